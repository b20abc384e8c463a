#!/usr/bin/env bash
# Build xnatpic-base:latest and the step images (containers/<step>/Dockerfile, tagged with
# the `image` of commands/<step>.json). Usage: containers/build-images.sh [STEP...]
#
# REGISTRY=HOST[:PORT][/path] tags each step image <registry>/<image> instead (e.g.
# 127.0.0.1:5000/xnatpic-t1map:0.1.1) and builds it from a copy of its Dockerfile whose
# org.nrg.commands label names that same image, so XNAT records a name every Swarm or
# Kubernetes node can pull. The Dockerfiles and commands/ stay unqualified.
#
# Runtime: docker when its engine answers, else podman set up as container-runtime.md
# says (CONTAINERS_CONF=containers/containers.conf, --network host, the host CA bundle
# mounted for pip). RUNTIME=docker|podman forces one. Either way the images start from the
# pinned Debian base that containers/build-debian-base.sh builds and checks against
# containers/debian-base.lock; BASE_FROM=NAME@sha256:DIGEST uses another base, by digest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
XNATPIC="${XNATPIC:-$root/.venv/bin/xnatpic}"
PYTHON="${PYTHON:-$root/.venv/bin/python}"
BASE_IMAGE="${BASE_IMAGE:-xnatpic-base:latest}"
REGISTRY="${REGISTRY:-}"

# shellcheck source=containers/runtime.sh
. "$root/containers/runtime.sh" build-images

# The base of xnatpic-base: the pinned debootstrapped Debian (containers/debian-base.lock,
# checked by build-debian-base.sh), or BASE_FROM given by digest (NAME@sha256:...).
build_args=()
if [ -n "${BASE_FROM:-}" ]; then
  if [[ "$BASE_FROM" != *@sha256:* ]]; then
    echo "build-images: BASE_FROM=$BASE_FROM is not pinned; name it by digest (NAME@sha256:...)" >&2
    exit 1
  fi
  build_args+=(--build-arg "BASE=$BASE_FROM")
else
  "$root/containers/build-debian-base.sh" "$runtime"
  build_args+=(--build-arg BASE=localhost/debian-base:bookworm)
fi
if [ "$runtime" = podman ]; then
  build_args+=(--network host)
  if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
    build_args+=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro
                 --build-arg PIP_CERT=/run/host-ca.crt)
  fi
fi

select_steps "$@"

# A small build context: only what the images copy (no .venv, no .git).
context="$(mktemp -d /tmp/xnatpic-context.XXXXXX)"
trap 'rm -rf "$context"' EXIT
tar -C "$root" --exclude=__pycache__ --exclude='*.egg-info' --exclude='*.pyc' \
    -cf - shared pipelines containers/requirements.lock | tar -C "$context" -xf -

# Prints the tag of a step image; with a registry also writes CONTEXT/Dockerfile.<step>,
# whose label names the image as tagged. Arguments: command file, Dockerfile, registry, copy.
tag_and_label='
import sys
from pathlib import Path
from xnatpic.xnat.errors import LabelError
from xnatpic.xnat.labels import dockerfile_for_registry, qualified_image, read_command_file
command_file, dockerfile = Path(sys.argv[1]), Path(sys.argv[2])
registry, copy = sys.argv[3], Path(sys.argv[4])
try:
    data = read_command_file(command_file)
    image = qualified_image((data[0] if isinstance(data, list) else data)["image"], registry)
    if registry:
        copy.write_text(dockerfile_for_registry(dockerfile, command_file, registry))
except LabelError as exc:
    sys.exit(f"build-images: {exc}")
print(image)
'

# The labels must match commands/ (and REGISTRY be a registry) before anything is built.
images=()
dockerfiles=()
for step in "${steps[@]}"; do
  if [ ! -f "commands/$step.json" ]; then
    echo "build-images: containers/$step/Dockerfile has no commands/$step.json" >&2
    exit 1
  fi
  "$XNATPIC" commands label "commands/$step.json" --dockerfile "containers/$step/Dockerfile" --check
  images+=("$("$PYTHON" -c "$tag_and_label" "commands/$step.json" "containers/$step/Dockerfile" \
              "$REGISTRY" "$context/Dockerfile.$step")")
  if [ -n "$REGISTRY" ]; then
    dockerfiles+=("$context/Dockerfile.$step")
  else
    dockerfiles+=("containers/$step/Dockerfile")
  fi
done

echo "build-images: $runtime build $BASE_IMAGE" >&2
start=$SECONDS
"$runtime" build "${build_args[@]}" -f containers/base/Dockerfile -t "$BASE_IMAGE" "$context"
for i in "${!steps[@]}"; do
  image="${images[$i]}"
  echo "build-images: $runtime build $image" >&2
  step_args=()
  [ "$runtime" = podman ] && step_args+=(--network host)
  # podman (buildah) resolves a short tag against local images: with an image of the same
  # short name built for a registry present, `-t xnatpic-x:1` would move THAT name. Tag
  # unqualified names as localhost/..., which is what podman calls them anyway.
  tag="$image"
  if [ "$runtime" = podman ] && [ -z "$REGISTRY" ] && [[ "$image" != */* ]]; then
    tag="localhost/$image"
  fi
  "$runtime" build "${step_args[@]}" --build-arg "BASE=$BASE_IMAGE" \
      -f "${dockerfiles[$i]}" -t "$tag" "$context"
  "$XNATPIC" commands lint "image:$image"
done
echo "build-images: done in $((SECONDS - start)) s" >&2
