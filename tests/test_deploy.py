"""The container deployment as docs/deploy.md writes it, on an engine that pulls nothing.

The worker image is built by ``scripts/build-worker-image.sh --offline`` and run by compose
(``docker-compose`` v1 when installed, else ``docker compose``) from the repository's
``compose.yaml`` without ``--build``, its settings in an env file as the docs write ``.env``. The
scripted model listens on the address the container's ``host.docker.internal`` resolves to (the
Docker bridge's gateway: reachable from containers, not from outside the host), as a model on the
host must. Through the container: ``/chat`` runs a tool in a sandbox the worker started on the
host's engine, and a task in a workspace writes a file that the worker serves and the host sees
in the data directory (mounted at the same path on both sides). ``compose down`` then leaves no
container of the worker's behind.

Marked ``deploy`` (slow: it builds an image), so ``-m "not deploy"`` leaves it out; CI runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shlex
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import docker
import docker.errors
import pytest

from tests.conftest import BASE_IMAGE, instance_containers
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls
from tests.served_worker import free_port

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "compose.yaml"

# The commands docs/deploy.md and the README show, run here as written (the build with a tag added).
BUILD = "bash scripts/build-worker-image.sh --offline"
MAKE_TOKEN = """printf 'AGENT_API_KEYS=alice:%s\\n' "$(openssl rand -hex 16)" >> .env"""
READ_TOKEN = "sed -n 's/^AGENT_API_KEYS=alice://p' .env"
UP = ("docker compose up -d", "docker-compose up -d")


def compose_command() -> list[str]:
    """``docker-compose`` (v1, what this project is tested with) or the ``docker compose`` plugin."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"]
    problem = "neither docker-compose nor the docker compose plugin is installed"
    if os.environ.get("CI") == "true":
        pytest.fail(f"the deployment test cannot run on CI: {problem}", pytrace=False)
    pytest.skip(problem)


@pytest.fixture(scope="module")
def worker_image(docker_client: docker.DockerClient) -> Iterator[str]:
    """The worker image, built as the docs say (offline), removed with its layers afterwards."""
    compose_command()  # skip before a minute of building when compose is missing
    if BASE_IMAGE != "agent-worker-base:bookworm" or not docker_client.images.list(name=BASE_IMAGE):
        pytest.skip(f"the offline build needs the offline base; the tests' base is {BASE_IMAGE}")
    tag = f"agent-worker:test-{uuid.uuid4().hex[:8]}"
    built = subprocess.run(
        [*shlex.split(BUILD), tag],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        assert built.returncode == 0, built.stdout + built.stderr
        # Each slow step announced itself (the script prints what it does and how long it takes).
        assert "making wheels" in built.stdout and f"built {tag}" in built.stdout
        yield tag
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.api.remove_image(tag, force=True)


def host_gateway(docker_client: docker.DockerClient) -> str:
    """The address ``host.docker.internal:host-gateway`` gives a container, asked of a container.

    It is the default bridge's own address (docker0's), which the scripted model then listens on.
    """
    container = docker_client.containers.create(
        BASE_IMAGE,
        ["getent", "ahostsv4", "host.docker.internal"],
        extra_hosts={"host.docker.internal": "host-gateway"},
        network_mode="bridge",  # the entry is written for a container on a network, as compose's is
    )
    try:
        try:
            container.start()
        except docker.errors.APIError as e:  # e.g. the bridge's interface (docker0) was deleted
            pytest.fail(f"the engine's default bridge is unusable: {e}", pytrace=False)
        assert container.wait(timeout=60)["StatusCode"] == 0, container.logs()
        return str(container.logs().decode().split()[0])
    finally:
        container.remove(force=True)


class Compose:
    """One compose project from the repository's compose.yaml, with its own env file."""

    def __init__(self, env_file: Path) -> None:
        self.project = f"awdeploy{uuid.uuid4().hex[:8]}"
        self.argv = [
            *compose_command(),
            "--env-file",
            str(env_file),
            "-p",
            self.project,
            "-f",
            str(COMPOSE_FILE),
        ]
        # Only what compose needs from the environment: a variable set here would override the
        # env file, as a user's shell overrides .env.
        self.env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME") or k.startswith("DOCKER_")}

    async def run(self, *args: str, extra_env: dict[str, str] | None = None) -> str:
        process = await asyncio.create_subprocess_exec(
            *self.argv,
            *args,
            env={**self.env, **(extra_env or {})},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 300)
        text = out.decode(errors="replace")
        assert process.returncode == 0, f"compose {' '.join(args)} failed:\n{text}"
        return text


@pytest.fixture
async def scripted_model(docker_client: docker.DockerClient) -> AsyncIterator[ScriptedModelServer]:
    """The scripted model where a model on the host must listen for the container to reach it."""
    gateway = host_gateway(docker_client)
    server = ScriptedModelServer(host=gateway)
    try:
        await server.__aenter__()
    except OSError as e:  # the engine's bridge interface (docker0) is missing on this host
        pytest.fail(f"cannot listen on {gateway}, the address host-gateway names: {e}", pytrace=False)
    try:
        yield server
    finally:
        await server.__aexit__(None, None, None)


@pytest.fixture
def dot_env(tmp_path: Path) -> tuple[Path, str]:
    """A ``.env`` with the token line made by the docs' command, and the token read back as they say."""
    subprocess.run(["bash", "-c", MAKE_TOKEN], cwd=tmp_path, check=True)
    read = subprocess.run(
        ["bash", "-c", READ_TOKEN], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    token = read.stdout.strip()
    assert len(token) == 32, read.stdout
    return tmp_path / ".env", token


def worker_container(docker_client: docker.DockerClient, project: str) -> Any:
    found = docker_client.containers.list(
        all=True,
        filters={"label": [f"com.docker.compose.project={project}", "com.docker.compose.service=worker"]},
    )
    assert len(found) == 1, found
    return found[0]


async def wait_healthy(base: str, docker_client: docker.DockerClient, project: str) -> None:
    """Until ``/health`` answers 200 through the published port; fails when the worker restarts."""
    async with aiohttp.ClientSession() as session:
        for _ in range(1200):
            container = worker_container(docker_client, project)
            assert container.attrs["RestartCount"] == 0, "the worker exited and was restarted"
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{base}/health") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise AssertionError("the worker in the container never became healthy")


async def follow_task(session: aiohttp.ClientSession, base: str, task_id: str) -> str:
    """Long-polls the task to its end; its final status."""
    offset = 0
    for _ in range(20):
        async with session.get(f"{base}/api/v1/tasks/{task_id}", params={"from": offset, "wait": 25}) as r:
            assert r.status == 200, await r.text()
            data = (await r.json())["data"]
        offset = data["next_offset"]
        if data["status"] not in ("pending", "running"):
            return str(data["status"])
    raise AssertionError("the task never ended")


async def test_compose_deployment_serves_chat_and_tasks_with_the_model_on_the_host(
    docker_client: docker.DockerClient,
    worker_image: str,
    sandbox_image: str,
    scripted_model: ScriptedModelServer,
    dot_env: tuple[Path, str],
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"  # absolute: the same path inside the container as on the host
    port = free_port()
    model_port = urlsplit(scripted_model.base_url).port
    env_file, token = dot_env
    with env_file.open("a") as env:
        env.write(
            f"OPENAI_BASE_URL=http://host.docker.internal:{model_port}/v1\n"
            "AGENT_MODEL=scripted-model\n"
            f"WORKER_IMAGE={worker_image}\n"
            f"WORKER_PORT=127.0.0.1:{port}\n"
            f"WORKER_DATA_DIR={data_dir}\n"
        )
    compose = Compose(env_file)
    instance = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]  # the worker's default id
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        # The sandbox image the other tests use and its base, passed on from the shell (saves a build).
        await compose.run(
            "up",
            "-d",
            extra_env={"AGENT_SANDBOX_IMAGE": sandbox_image, "AGENT_SANDBOX_BASE_IMAGE": BASE_IMAGE},
        )
        await wait_healthy(base, docker_client, compose.project)
        async with aiohttp.ClientSession(headers=headers) as session:
            scripted_model.extend(
                [ToolCalls([Call("execute_bash", {"command": "echo sandbox says $((6 * 7))"})]), Reply("42")]
            )
            async with session.post(f"{base}/chat", json={"message": "six times seven?"}) as response:
                assert response.status == 200, await response.text()
                body = await response.json()
            assert body["response"] == "42"
            assert body["logs"][1]["result"]["stdout"] == "sandbox says 42\n"

            scripted_model.extend(
                [ToolCalls([Call("execute_bash", {"command": "echo deployed > note.txt"})]), Reply("written")]
            )
            async with session.post(f"{base}/api/v1/messages", json={"message": "write a note"}) as response:
                assert response.status == 202, await response.text()
                task_id = (await response.json())["task_id"]
            assert await follow_task(session, base, task_id) == "completed"
            async with session.get(f"{base}/api/v1/files/download", params={"path": "note.txt"}) as response:
                assert response.status == 200, await response.text()
                assert await response.text() == "deployed\n"
        # The sandbox wrote through a bind mount of the host's path, which the worker shares.
        assert [p.read_text() for p in data_dir.rglob("note.txt")] == ["deployed\n"]
        scripted_model.assert_script_consumed()
        assert scripted_model.requests[0]["model"] == "scripted-model"
    except BaseException:
        print(await compose.run("logs", "--no-color", "worker"))  # shown with the failure
        raise
    finally:
        await compose.run("down", "--volumes", "--timeout", "60")
        left = instance_containers(docker_client, instance)
        for container in left:  # never leak them, but the test fails below
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.api.remove_container(container["Id"], force=True)
    assert left == [], "compose down left the worker's sandboxes behind"


def test_the_docs_show_the_commands_this_module_runs() -> None:
    for page in (REPO / "docs" / "deploy.md", REPO / "README.md"):
        text = page.read_text()
        for command in (BUILD, MAKE_TOKEN, READ_TOKEN, *UP):
            assert command in text, f"{page.name} no longer shows {command!r}"
    assert "up -d --build" not in (REPO / "README.md").read_text()  # a registry's way, not the README's
