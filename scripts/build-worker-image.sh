#!/usr/bin/env bash
# Build the worker's container image.
#   build-worker-image.sh [--offline] [TAG]      (default tag agent-worker:latest)
# Without --offline, pip inside the build fetches dependencies (the build needs the index) and the
# base (BASE_IMAGE, default python:3.12-slim) is pulled from a registry if missing.
# With --offline, no container registry is used: wheels are made here on the host (from PyPI, or
# pip's cache) and the build installs only those, on the offline Debian base image (made first by
# scripts/offline-base-image.sh when missing). The base's python3 must then be the same minor
# version as this host's (PYTHON, default python3; the offline base's python3 is 3.11).
# Each step says what it does and how long it usually takes (measured in docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/.."
offline=false
if [[ ${1:-} == --offline ]]; then offline=true; shift; fi
tag=${1:-agent-worker:latest}
python=${PYTHON:-python3}
say() { echo "build-worker-image: $*"; }

rm -rf build/wheels
trap 'rm -rf build/wheels' EXIT  # the wheels are in the image; a copy here would only go stale
if $offline; then
  base=${BASE_IMAGE:-agent-worker-base:bookworm}
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    say "the base $base is missing: building it from Debian packages first (about 1-3 min)"
    bash scripts/offline-base-image.sh "$base"
  fi
  host_version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  base_version=$(docker run --rm --network none "$base" python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  if [[ $host_version != "$base_version" ]]; then
    say "host python $host_version != $base's python $base_version; set PYTHON" >&2
    exit 1
  fi
  say "making wheels of the worker and its dependencies on the host (about 20 s, longer on a cold pip cache)"
  "$python" -m pip wheel -q --wheel-dir build/wheels .
  say "building $tag on $base from those wheels, no index (about 30-60 s)"
  # --network none: the build cannot reach any index or registry, so offline is what it proves.
  docker build -q --network none --build-arg "BASE_IMAGE=$base" \
    --build-arg "PIP_ARGS=--no-index --find-links /src/build/wheels" --build-arg PACKAGE=agent-worker -t "$tag" . >/dev/null
else
  say "building $tag on ${BASE_IMAGE:-python:3.12-slim}, pip fetching from the index (about 1-2 min)"
  docker build -q --build-arg "BASE_IMAGE=${BASE_IMAGE:-python:3.12-slim}" -t "$tag" . >/dev/null
fi
say "built $tag in ${SECONDS} s"
