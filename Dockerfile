# The worker itself. It drives the host's Docker engine through the mounted socket
# (/var/run/docker.sock); it never mounts that socket into a sandbox.
#
#   docker compose build                       # a host whose Docker builds can reach PyPI
#   scripts/build-worker-image.sh --offline    # air-gapped: wheels made on the host, no index used
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
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"
# Listening on all interfaces needs AGENT_API_KEYS (or --allow-anonymous, not recommended).
CMD ["agent-worker", "serve", "--host", "0.0.0.0", "--port", "8080"]
