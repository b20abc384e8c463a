#!/usr/bin/env bash
# Build the pinned Debian base of every image (default localhost/debian-base:bookworm) with
# debootstrap, and check it against containers/debian-base.lock.
#
# Usage: containers/build-debian-base.sh [podman|docker]      (default podman)
#
# Pinning. No base image can be pulled on these machines and snapshot.debian.org is not
# reachable from them, so the base comes from the Debian mirror named in
# /etc/apt/sources.list.d/debian.sources (read at run time; DEBIAN_MIRROR overrides it,
# e.g. http://snapshot.debian.org/archive/debian/<date>/ where that is reachable).
# debootstrap checks the suite's Release file against Debian's archive keyring and every
# .deb against the sha256 of the signed Packages index; this script then checks that the
# packages installed are exactly those of containers/debian-base.lock (name, version,
# architecture and the sha256 of each .deb) and fails otherwise: when the mirror's suite
# moves on (a point release), the build stops instead of silently changing the base.
# Review the difference it prints, then refresh the lock with
#   DEBIAN_BASE_UPDATE_LOCK=1 containers/build-debian-base.sh
# The image carries the sha256 of the lock and of this script as the labels
# org.xnatpic.debian-base.lock and org.xnatpic.debian-base.script (inherited by xnatpic-base
# and every step image); an existing image is reused only when both match, else it is rebuilt.
#
# Size. Python (python3, python3-venv, ca-certificates) comes from the same debootstrap run,
# so one package set is pinned; the .deb files, apt lists and caches, documentation (the
# copyright files stay), man pages and translations are removed before the import, and
# dpkg/apt are configured to keep them out of any later apt-get install.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
runtime="${1:-podman}"
IMAGE="${DEBIAN_BASE_IMAGE:-localhost/debian-base:bookworm}"
LOCK="${DEBIAN_BASE_LOCK:-$here/debian-base.lock}"
LABEL=org.xnatpic.debian-base.lock
SCRIPT_LABEL=org.xnatpic.debian-base.script
if [ "$runtime" = podman ]; then
  export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
fi

fail() { echo "build-debian-base: $*" >&2; exit 1; }

[ -r "$LOCK" ] || fail "cannot read the lock file $LOCK"
suite="$(awk '$1 == "suite" {print $2; exit}' "$LOCK")"
include="$(awk '$1 == "include" {print $2; exit}' "$LOCK")"
[ -n "$suite" ] || fail "$LOCK has no 'suite' line"
lock_sha="$(sha256sum "$LOCK" | cut -d' ' -f1)"
script_sha="$(sha256sum "$0" | cut -d' ' -f1)"

if "$runtime" image inspect "$IMAGE" >/dev/null 2>&1; then
  have="$("$runtime" image inspect --format \
          "{{ index .Config.Labels \"$LABEL\" }} {{ index .Config.Labels \"$SCRIPT_LABEL\" }}" "$IMAGE")"
  if [ "$have" = "$lock_sha $script_sha" ] && [ -z "${DEBIAN_BASE_UPDATE_LOCK:-}" ]; then
    echo "build-debian-base: $IMAGE present, built from this lock and script" >&2
    exit 0
  fi
  echo "build-debian-base: $IMAGE was built from another lock or script: rebuilding" >&2
fi

command -v debootstrap >/dev/null 2>&1 \
  || fail "debootstrap is not installed ('make container-tools' installs it)"
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  sources=/etc/apt/sources.list.d/debian.sources
  [ -r "$sources" ] || fail "cannot read $sources to find the Debian mirror (or set DEBIAN_MIRROR)"
  mirror="$(awk '/^URIs:/ {print $2; exit}' "$sources")"
  [ -n "$mirror" ] || fail "no 'URIs:' line in $sources"
fi

work="$(mktemp -d /tmp/debian-base.XXXXXX)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
debs="$work/debs"
mkdir "$rootfs" "$debs"
echo "build-debian-base: debootstrap $suite (+ $include) from $mirror (about 2 min)" >&2
debootstrap --variant=minbase ${include:+--include="$include"} \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg --cache-dir="$debs" \
    "$suite" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
  || fail "debootstrap failed: $(tail -3 "$work/debootstrap.log")"

# What was installed: name version architecture sha256-of-the-.deb, sorted.
installed="$work/installed"
dpkg-query --admindir="$rootfs/var/lib/dpkg" -W -f '${Package} ${Version} ${Architecture}\n' \
  | sort > "$work/status"
for deb in "$debs"/*.deb; do
  printf '%s %s\n' "$(dpkg-deb --show --showformat='${Package} ${Version} ${Architecture}' "$deb")" \
         "$(sha256sum "$deb" | cut -d' ' -f1)"
done | sort > "$installed"
if ! diff <(cut -d' ' -f1-3 "$installed") "$work/status" >&2; then
  fail "the installed packages are not the .deb files debootstrap fetched (dpkg status vs archives)"
fi
release_date="$(awk -F': ' '$1 == "Date" {print $2; exit}' \
                "$rootfs"/var/lib/apt/lists/*_dists_"${suite}"_*Release 2>/dev/null || true)"

if [ -n "${DEBIAN_BASE_UPDATE_LOCK:-}" ]; then
  {
    echo "# Debian packages of localhost/debian-base (containers/build-debian-base.sh checks"
    echo "# every build against this list). Refreshed with DEBIAN_BASE_UPDATE_LOCK=1 from a"
    echo "# mirror whose $suite Release file (signature checked by debootstrap) was dated"
    echo "# ${release_date:-unknown}."
    echo "# Lines: deb NAME VERSION ARCHITECTURE SHA256-OF-THE-.deb"
    echo "suite $suite"
    [ -n "$include" ] && echo "include $include"
    sed 's/^/deb /' "$installed"
  } > "$LOCK.new"
  mv "$LOCK.new" "$LOCK"
  lock_sha="$(sha256sum "$LOCK" | cut -d' ' -f1)"
  echo "build-debian-base: wrote $LOCK ($(wc -l < "$installed") packages)" >&2
elif ! diff <(awk '$1 == "deb" {print $2, $3, $4, $5}' "$LOCK" | sort) "$installed" \
        > "$work/diff"; then
  echo "build-debian-base: the packages of $suite at $mirror differ from $LOCK" \
       "(< lock, > mirror; Release dated ${release_date:-unknown}):" >&2
  cat "$work/diff" >&2
  fail "refusing to build an unpinned base; review the difference, then run" \
       "DEBIAN_BASE_UPDATE_LOCK=1 containers/build-debian-base.sh"
fi

# Only what runs: no .deb files, apt lists or caches, documentation, man pages, translations,
# nor glibc's iconv modules (gconv: Python has its own codecs; UTF-8 and Latin-1 are built in).
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
       "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/var/cache/debconf/*-old \
       "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
       "$rootfs"/usr/share/lintian "$rootfs"/usr/share/linda \
       "$rootfs"/usr/lib/*-linux-gnu/gconv
find "$rootfs"/usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
find "$rootfs"/usr/share/doc -mindepth 1 -type d -empty -delete
cat > "$rootfs/etc/dpkg/dpkg.cfg.d/xnatpic-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
cat > "$rootfs/etc/apt/apt.conf.d/xnatpic-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Install-Recommends "false";
EOF

tar --numeric-owner -C "$rootfs" -c . \
  | "$runtime" import --change "LABEL $LABEL=$lock_sha" \
      --change "LABEL $SCRIPT_LABEL=$script_sha" - "$IMAGE" >/dev/null
echo "build-debian-base: imported $IMAGE (lock $lock_sha)" >&2
