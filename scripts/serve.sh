#!/usr/bin/env bash
# Set up and run the worker: venv + `pip install .`, the offline sandbox base image
# (agent-worker-base:bookworm, no container registry needed) unless AGENT_SANDBOX_BASE_IMAGE names
# another, then `agent-worker serve "$@"`. Without AGENT_SANDBOX_BASE_IMAGE the worker builds its
# sandbox image on that base whenever the engine has it, so a later plain `agent-worker serve`
# uses the same image.
# The first start is the slow one; each slow step says so, with its usual time (docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "serve.sh: $*"; }

if [[ ! -x .venv/bin/agent-worker ]]; then
  say "installing agent-worker and its dependencies into .venv (first time: about 30 s, more on a slow network)"
else
  say "updating .venv (a few seconds)"
fi
python3 -m venv .venv
.venv/bin/pip install -q .

if [[ -z ${AGENT_SANDBOX_BASE_IMAGE:-} ]]; then
  bash scripts/offline-base-image.sh agent-worker-base:bookworm
fi
say "starting the worker; on its first start it builds the sandbox image (about 15 s, logged as sandbox_image_build lines)"
exec .venv/bin/agent-worker serve "$@"
