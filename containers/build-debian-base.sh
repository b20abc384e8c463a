#!/usr/bin/env bash
# Build localhost/debian-base:bookworm with debootstrap when podman has no such image.
# No base image can be pulled on these machines; this one comes from Debian's packages.
# The mirror is read from /etc/apt/sources.list.d/debian.sources at run time.
set -euo pipefail
IMAGE="${DEBIAN_BASE_IMAGE:-localhost/debian-base:bookworm}"
SUITE="${DEBIAN_SUITE:-bookworm}"
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"

if podman image exists "$IMAGE"; then
  echo "build-debian-base: $IMAGE already present" >&2
  exit 0
fi
sources=/etc/apt/sources.list.d/debian.sources
if [ ! -r "$sources" ]; then
  echo "build-debian-base: cannot read $sources to find the Debian mirror" >&2
  exit 1
fi
mirror="$(awk '/^URIs:/ {print $2; exit}' "$sources")"
if [ -z "$mirror" ]; then
  echo "build-debian-base: no 'URIs:' line in $sources" >&2
  exit 1
fi
rootfs="$(mktemp -d /tmp/debian-base.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "build-debian-base: debootstrap $SUITE from $mirror (about 75 s)" >&2
debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >/dev/null
tar -C "$rootfs" -c . | podman import --quiet - "$IMAGE" >/dev/null
echo "build-debian-base: imported $IMAGE" >&2
