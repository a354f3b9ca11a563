#!/usr/bin/env bash
# Set up and run the worker: venv + `pip install .`, a sandbox base image that needs no registry
# (unless AGENT_SANDBOX_BASE_IMAGE names another), then `agent-worker serve "$@"`.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install -q .

if [[ -z ${AGENT_SANDBOX_BASE_IMAGE:-} ]]; then
  export AGENT_SANDBOX_BASE_IMAGE=agent-worker-base:bookworm
  bash scripts/offline-base-image.sh "$AGENT_SANDBOX_BASE_IMAGE"
fi
exec .venv/bin/agent-worker serve "$@"
