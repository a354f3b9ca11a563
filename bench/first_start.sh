#!/usr/bin/env bash
# How long each slow step of a first start takes on this machine (docs/deploy.md, "The first
# start"): the package install into a new venv and again into the same venv, the offline base image,
# the worker image built offline, the sandbox image built on that base, and the worker's container
# start (compose.yaml, both images present) until /health answers.
# Every image, venv and container it makes has a throwaway name and is removed at the end; the
# images a deployment uses are left alone. Needs root (debootstrap), a Docker engine and a compose.
#   bash bench/first_start.sh
set -euo pipefail
cd "$(dirname "$0")/.."
run_id=$(date +%s)
base=agent-worker-base:bench-$run_id
worker=agent-worker:bench-$run_id
sandbox=agent-worker-sandbox:bench-$run_id
work=$(mktemp -d /tmp/first-start.XXXXXX)
project=awbench$run_id
if command -v docker-compose >/dev/null; then compose=(docker-compose); else compose=(docker compose); fi
compose+=(--env-file "$work/.env" -p "$project" -f compose.yaml)

cleanup() {
  [[ -f $work/.env ]] && "${compose[@]}" down --volumes --timeout 60 >/dev/null 2>&1 || true
  docker image rm -f "$worker" "$sandbox" "$base" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

results=()
timed() {  # timed LABEL COMMAND...: runs it quietly, records the seconds it took
  local label=$1 start end
  shift
  start=$(date +%s.%N)
  "$@" >"$work/step.log" 2>&1 || { cat "$work/step.log" >&2; exit 1; }
  end=$(date +%s.%N)
  results+=("$(printf '| %s | %.0f s |' "$label" "$(echo "$end - $start" | bc)")")
}

python3 -m venv "$work/venv"
timed "pip install . into a new venv" "$work/venv/bin/pip" install -q .
timed "pip install . again, same venv" "$work/venv/bin/pip" install -q .
timed "offline base image (debootstrap + import)" env FORCE=1 bash scripts/offline-base-image.sh "$base"
timed "worker image, offline" env BASE_IMAGE="$base" bash scripts/build-worker-image.sh --offline "$worker"
timed "sandbox image on the offline base" "$work/venv/bin/python" -c "
import asyncio, docker, structlog
from sandbox.docker_engine.image import ensure_image
asyncio.run(ensure_image(docker.from_env(), '$sandbox', '$base', structlog.get_logger()))"

port=$("$work/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'AGENT_API_KEYS=bench:%s\nWORKER_IMAGE=%s\nWORKER_PORT=127.0.0.1:%s\nWORKER_DATA_DIR=%s\n' \
  "$(openssl rand -hex 16)" "$worker" "$port" "$work/data" >"$work/.env"
start_worker() {
  AGENT_SANDBOX_IMAGE=$sandbox AGENT_SANDBOX_BASE_IMAGE=$base "${compose[@]}" up -d
  for _ in $(seq 1200); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  "${compose[@]}" logs worker >&2
  return 1
}
timed "worker container start until /health (images present)" start_worker

echo "| step | time |"
echo "|---|---|"
printf '%s\n' "${results[@]}"
