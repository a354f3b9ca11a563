#!/usr/bin/env bash
# Set up and run the whole test suite: venv + dependencies, the offline sandbox base image
# (reused when present), lint, then pytest with real Docker containers and a scripted model.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[test]"

# The /docs test renders the page in Debian's Chromium (Playwright's own browser download is not
# reachable); install it when missing. That needs root, as CI has; without it the test skips.
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
    else
        echo "chromium is missing and this is not root: the /docs browser test will skip" >&2
    fi
fi

export AGENT_SANDBOX_BASE_IMAGE=${AGENT_SANDBOX_BASE_IMAGE:-agent-worker-base:bookworm}
export AGENT_SANDBOX_IMAGE=${AGENT_SANDBOX_IMAGE:-agent-worker-sandbox:test}
bash scripts/offline-base-image.sh "$AGENT_SANDBOX_BASE_IMAGE"

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
