#!/usr/bin/env bash
# Build xnatpic-base:latest and the step images (containers/<step>/Dockerfile, tagged with
# the `image` of commands/<step>.json). Usage: containers/build-images.sh [STEP...]
#
# Runtime: docker when its engine answers, else podman set up as container-runtime.md
# says (CONTAINERS_CONF=containers/containers.conf, a debootstrapped base image,
# --network host, the host CA bundle mounted for pip). RUNTIME=docker|podman forces one.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
XNATPIC="${XNATPIC:-$root/.venv/bin/xnatpic}"
PYTHON="${PYTHON:-$root/.venv/bin/python}"
BASE_IMAGE="${BASE_IMAGE:-xnatpic-base:latest}"

runtime="${RUNTIME:-}"
if [ -z "$runtime" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    runtime=docker
  elif command -v podman >/dev/null 2>&1; then
    runtime=podman
  else
    echo "build-images: neither a Docker engine nor podman is available ('make container-tools' installs podman)" >&2
    exit 1
  fi
fi

build_args=()
if [ "$runtime" = podman ]; then
  export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/containers/containers.conf}"
  "$root/containers/build-debian-base.sh"
  build_args+=(--network host --build-arg BASE=localhost/debian-base:bookworm)
  if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
    build_args+=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro
                 --build-arg PIP_CERT=/run/host-ca.crt)
  fi
fi

if [ "$#" -gt 0 ]; then
  steps=("$@")
else
  steps=()
  for dockerfile in containers/*/Dockerfile; do
    step="$(basename "$(dirname "$dockerfile")")"
    [ "$step" = base ] || steps+=("$step")
  done
fi

# The labels must match commands/ before anything is built.
for step in "${steps[@]}"; do
  if [ ! -f "commands/$step.json" ]; then
    echo "build-images: containers/$step/Dockerfile has no commands/$step.json" >&2
    exit 1
  fi
  "$XNATPIC" commands label "commands/$step.json" --dockerfile "containers/$step/Dockerfile" --check
done

# A small build context: only what the images copy (no .venv, no .git).
context="$(mktemp -d /tmp/xnatpic-context.XXXXXX)"
trap 'rm -rf "$context"' EXIT
tar -C "$root" --exclude=__pycache__ --exclude='*.egg-info' --exclude='*.pyc' \
    -cf - shared pipelines | tar -C "$context" -xf -

echo "build-images: $runtime build $BASE_IMAGE" >&2
start=$SECONDS
"$runtime" build "${build_args[@]}" -f containers/base/Dockerfile -t "$BASE_IMAGE" "$context"
for step in "${steps[@]}"; do
  image="$("$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print((d[0] if isinstance(d, list) else d)["image"])' "commands/$step.json")"
  echo "build-images: $runtime build $image" >&2
  step_args=()
  [ "$runtime" = podman ] && step_args+=(--network host)
  "$runtime" build "${step_args[@]}" --build-arg "BASE=$BASE_IMAGE" \
      -f "containers/$step/Dockerfile" -t "$image" "$context"
  "$XNATPIC" commands lint "image:$image"
done
echo "build-images: done in $((SECONDS - start)) s" >&2
