#!/usr/bin/env bash
# Set up and run the worker: venv + `pip install .`, the offline sandbox base image
# (agent-worker-base:bookworm, no container registry needed) unless AGENT_SANDBOX_BASE_IMAGE names
# another, then `agent-worker serve "$@"`. Without AGENT_SANDBOX_BASE_IMAGE the worker builds its
# sandbox image on that base whenever the engine has it, so a later plain `agent-worker serve`
# uses the same image.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install -q .

if [[ -z ${AGENT_SANDBOX_BASE_IMAGE:-} ]]; then
  bash scripts/offline-base-image.sh agent-worker-base:bookworm
fi
exec .venv/bin/agent-worker serve "$@"
