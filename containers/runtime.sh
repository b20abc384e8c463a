# Sourced by build-images.sh and push-images.sh: sets `runtime` to docker when its engine
# answers, else podman (with this project's CONTAINERS_CONF); RUNTIME=docker|podman forces
# one. $1 is the calling script's name, for the error message. Defines select_steps.

# select_steps [STEP...]: sets `steps` to the steps named, else to every containers/<step>/
# with a Dockerfile except the base image (run from the project root).
select_steps() {
  steps=()
  if [ "$#" -gt 0 ]; then
    steps=("$@")
    return
  fi
  local dockerfile step
  for dockerfile in containers/*/Dockerfile; do
    step="$(basename "$(dirname "$dockerfile")")"
    [ "$step" = base ] || steps+=("$step")
  done
}

runtime="${RUNTIME:-}"
if [ -z "$runtime" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    runtime=docker
  elif command -v podman >/dev/null 2>&1; then
    runtime=podman
  else
    echo "$1: neither a Docker engine nor podman is available ('make container-tools' installs podman)" >&2
    exit 1
  fi
fi
if [ "$runtime" = podman ]; then
  export CONTAINERS_CONF="${CONTAINERS_CONF:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf}"
fi
