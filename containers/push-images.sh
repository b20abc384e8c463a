#!/usr/bin/env bash
# Push the step images built by `make images REGISTRY=...` to that registry, after checking
# that each image's org.nrg.commands label names it as tagged (the name XNAT records and
# every Swarm or Kubernetes node pulls).
#
# Usage: REGISTRY=HOST[:PORT][/path] containers/push-images.sh [STEP...]
# TLS_VERIFY=false pushes to a plain-HTTP registry with podman (--tls-verify=false);
# Docker allows plain HTTP to 127.0.0.0/8 and to the "insecure-registries" listed in
# /etc/docker/daemon.json, nothing else. RUNTIME=docker|podman forces a runtime.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
PYTHON="${PYTHON:-$root/.venv/bin/python}"
REGISTRY="${REGISTRY:-}"
if [ -z "$REGISTRY" ]; then
  echo "push-images: set REGISTRY=HOST[:PORT][/path], the registry the images were built for (make images REGISTRY=...)" >&2
  exit 1
fi

# shellcheck source=containers/runtime.sh
. "$root/containers/runtime.sh" push-images

push_args=()
if [ "${TLS_VERIFY:-true}" = false ]; then
  if [ "$runtime" != podman ]; then
    echo "push-images: TLS_VERIFY=false is a podman option; Docker reads insecure registries from /etc/docker/daemon.json" >&2
    exit 1
  fi
  push_args+=(--tls-verify=false)
fi

select_steps "$@"

# Prints the registry name of a step image once its label names it so.
# Arguments: command file, registry, runtime.
name_and_check='
import json
import sys
from pathlib import Path
from xnatpic.errors import XnatpicError
from xnatpic.xnat.labels import qualified_image, read_command_file
from xnatpic.xnat.schema import read_image_label
command_file, registry, runtime = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
try:
    data = read_command_file(command_file)
    image = qualified_image((data[0] if isinstance(data, list) else data)["image"], registry)
    labelled = [c.get("image") for c in json.loads(read_image_label(image, cli=runtime))]
except XnatpicError as exc:
    sys.exit(f"push-images: {exc}; build it first: make images REGISTRY={registry}")
if labelled != [image]:
    sys.exit(f"push-images: image {image}: its label names {labelled}, not {image}; "
             f"rebuild it with make images REGISTRY={registry}")
print(image)
'
images=()
for step in "${steps[@]}"; do
  images+=("$("$PYTHON" -c "$name_and_check" "commands/$step.json" "$REGISTRY" "$runtime")")
done
for image in "${images[@]}"; do
  echo "push-images: $runtime push $image" >&2
  "$runtime" push "${push_args[@]}" "$image"
done
