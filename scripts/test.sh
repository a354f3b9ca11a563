#!/usr/bin/env bash
# Set up and run the whole test suite: venv + dependencies, the offline sandbox base image
# (reused when present), lint, then pytest with real Docker containers and a scripted model.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[test]"

# Debian packages the tests need, installed when missing (one apt-get update for all). That needs
# root, as CI has; without it the tests that need them skip (PostgreSQL's fail under CI=true).
# - chromium: the /docs test renders the page in it (Playwright's own browser download is not
#   reachable);
# - postgresql: the store's tests run on SQLite and on a throwaway PostgreSQL cluster
#   (tests/postgres.py starts it as the postgres user); only the binaries are used, the package's
#   own cluster and service are left alone;
# - docker-compose (Compose v1), unless the docker compose plugin is there: tests/test_deploy.py
#   runs the worker image with compose.yaml, as docs/deploy.md does.
missing=()
command -v chromium >/dev/null || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    else
        echo "${missing[*]} missing and this is not root: the tests that need them will skip" >&2
    fi
fi

export AGENT_SANDBOX_BASE_IMAGE=${AGENT_SANDBOX_BASE_IMAGE:-agent-worker-base:bookworm}
export AGENT_SANDBOX_IMAGE=${AGENT_SANDBOX_IMAGE:-agent-worker-sandbox:test}
bash scripts/offline-base-image.sh "$AGENT_SANDBOX_BASE_IMAGE"

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
