# The worker itself. It drives the host's Docker engine through the mounted socket
# (/var/run/docker.sock); it never mounts that socket into a sandbox.
#
#   bash scripts/build-worker-image.sh --offline   # no registry: host-made wheels, the offline base,
#                                                  # a build with no network (docs/deploy.md)
#   docker compose build                           # a host whose Docker pulls python:3.12-slim and reaches PyPI
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

# The offline build installs the host-made wheel instead of building from source:
# PIP_ARGS="--no-index --find-links /src/build/wheels" PACKAGE=agent-worker.
ARG PIP_ARGS=""
ARG PACKAGE=/src
COPY . /src
RUN python3 -m venv /opt/agent-worker \
 && /opt/agent-worker/bin/pip install --no-cache-dir ${PIP_ARGS} ${PACKAGE} \
 && rm -rf /src

ENV PATH=/opt/agent-worker/bin:$PATH \
    AGENT_DATA_DIR=/var/lib/agent-worker \
    PYTHONUNBUFFERED=1
EXPOSE 8080
STOPSIGNAL SIGTERM
# /health, not /ready: a model that is down makes the worker not ready, not the container broken.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"
# Listening on all interfaces needs AGENT_API_KEYS (or --allow-anonymous, not recommended).
CMD ["agent-worker", "serve", "--host", "0.0.0.0", "--port", "8080"]
