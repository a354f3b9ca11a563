#!/usr/bin/env bash
# Build the worker's container image.
#   build-worker-image.sh [--offline] [TAG]      (default tag agent-worker:latest)
# Without --offline, pip inside the build fetches dependencies (the build needs the index).
# With --offline, wheels are made here on the host and the build installs only those: the base
# image's python3 must then be the same minor version as this host's (BASE_IMAGE, default the
# offline Debian base, whose python3 is 3.11).
set -euo pipefail
cd "$(dirname "$0")/.."
offline=false
if [[ ${1:-} == --offline ]]; then offline=true; shift; fi
tag=${1:-agent-worker:latest}
python=${PYTHON:-python3}

rm -rf build/wheels
if $offline; then
  base=${BASE_IMAGE:-agent-worker-base:bookworm}
  docker image inspect "$base" >/dev/null 2>&1 || bash scripts/offline-base-image.sh "$base"
  host_version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  base_version=$(docker run --rm --network none "$base" python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  if [[ $host_version != "$base_version" ]]; then
    echo "build-worker-image: host python $host_version != $base's python $base_version; set PYTHON" >&2
    exit 1
  fi
  "$python" -m pip wheel -q --wheel-dir build/wheels .
  docker build -q --build-arg "BASE_IMAGE=$base" \
    --build-arg "PIP_ARGS=--no-index --find-links /src/build/wheels" --build-arg PACKAGE=agent-worker -t "$tag" . >/dev/null
else
  docker build -q --build-arg "BASE_IMAGE=${BASE_IMAGE:-python:3.12-slim}" -t "$tag" . >/dev/null
fi
echo "built $tag"
