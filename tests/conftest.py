"""Fixtures every test package shares: a Docker client, the sandbox image, a per-test instance id.

Docker tests skip when no engine answers or when neither the sandbox image nor its base is on the
engine: the build never pulls, and nothing here may reach a registry. A test is a Docker test when
it uses ``docker_client``, directly or through another fixture: it gets the ``docker`` marker here,
so ``pytest -m "not docker"`` is the fast tier, which needs no engine.

The store runs on two database engines. ``database_url`` is the ``AGENT_DATABASE_URL`` a test's
store opens: ``None`` (SQLite in the data directory) unless the test or its module carries the
``both_engines`` marker, which runs it once per engine, the second time on a fresh database of a
throwaway PostgreSQL cluster (tests/postgres.py) started once per session. Without PostgreSQL's
binaries those runs skip, except under ``CI=true``, where they fail: CI never skips an engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import os
import tarfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NoReturn

import docker
import docker.errors
import pytest
import structlog

from runtime.store import Store
from sandbox.docker_engine.backend import LABEL_INSTANCE
from sandbox.docker_engine.image import ensure_image, image_present
from tests.postgres import Cluster, PostgresUnavailable, running_cluster

SANDBOX_IMAGE = os.environ.get("AGENT_SANDBOX_IMAGE", "agent-worker-sandbox:test")
BASE_IMAGE = os.environ.get("AGENT_SANDBOX_BASE_IMAGE", "agent-worker-base:bookworm")
ENGINES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Only marked tests run twice: the API tests all reach the store, and running every one of them
    # on both engines would double the suite's time for little more than the marked ones cover.
    if "database_url" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_engines"):
        metafunc.parametrize("database_url", ENGINES, indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Marked by what the test uses rather than by hand, so a new Docker test cannot miss the marker.
    for item in items:
        if "docker_client" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client: docker.DockerClient | None = None
    problem = None
    with warnings.catch_warnings():
        # docker-py leaks the socket of a failed version probe: collect it now, silently, rather
        # than have it fail whichever test happens to run the garbage collector.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env()
            client.ping()
        except docker.errors.DockerException as e:
            problem = str(e)
            if client is not None:
                client.close()
        gc.collect()
    if client is None or problem is not None:
        pytest.skip(f"no Docker engine: {problem}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def sandbox_image(docker_client: docker.DockerClient) -> str:
    present = asyncio.run(image_present(docker_client, SANDBOX_IMAGE))
    if not present and not asyncio.run(image_present(docker_client, BASE_IMAGE)):
        # A missing base would make the engine pull it: skip rather than reach a registry.
        pytest.skip(f"neither {SANDBOX_IMAGE} nor its base {BASE_IMAGE} is on the engine")
    return asyncio.run(ensure_image(docker_client, SANDBOX_IMAGE, BASE_IMAGE, structlog.get_logger("tests")))


def instance_containers(client: docker.DockerClient, instance: str) -> list[dict[str, Any]]:
    return client.api.containers(all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"})


@pytest.fixture
def instance_id() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def empty_base(docker_client: docker.DockerClient) -> Iterator[str]:
    """An image with no files at all: present locally (nothing to pull), but it has no shell."""
    tag = f"aw-test-empty:{uuid.uuid4().hex[:8]}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("empty")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    repository, _, version = tag.partition(":")
    docker_client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=version)
    base_id = docker_client.api.inspect_image(tag)["Id"]
    yield tag
    # A failed build keeps an image per step that ran, stacked on our base: removing the top of
    # each stack on it prunes the untagged layers under it, then the base goes with its tag. Only
    # stacks on this base: other tests may be building images on this engine right now.
    parents = {i["Id"]: i["ParentId"] for i in docker_client.api.images(all=True)}

    def on_base(image: str) -> bool:
        while image:
            if image == base_id:
                return True
            image = parents.get(image, "")
        return False

    ours = {image for image in parents if image != base_id and on_base(image)}
    for image in ours - {parents[image] for image in ours}:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.api.remove_image(image, force=True)
    with contextlib.suppress(docker.errors.ImageNotFound):  # pruned above when no step ran on it
        docker_client.api.remove_image(tag, force=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the session (tests/postgres.py)."""
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(running_cluster())
        except PostgresUnavailable as e:
            postgres_unavailable(str(e))
        yield cluster


def postgres_unavailable(problem: str) -> NoReturn:
    """Skip the test that needs PostgreSQL, or fail it under ``CI=true``: CI never skips an engine."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests cannot run on CI: {problem}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {problem}")


@pytest.fixture
async def postgres_url(postgres_cluster: Cluster) -> AsyncIterator[str]:
    """The URL of a fresh database on the session's cluster, dropped after the test."""
    async with postgres_cluster.fresh_database() as url:
        yield url


@pytest.fixture
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    """``AGENT_DATABASE_URL`` for this test: None (SQLite in the data directory) or a fresh
    PostgreSQL database, by the engine the ``both_engines`` parametrization chose."""
    engine = getattr(request, "param", "sqlite")
    if engine == "sqlite":
        yield None
        return
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    async with cluster.fresh_database() as url:
        yield url


@pytest.fixture
def store_target(database_url: str | None, tmp_path: Path) -> str | Path:
    """What ``Store.open`` takes for this test's engine: its database's URL, or a SQLite file."""
    return database_url or tmp_path / "db.sqlite3"


async def assert_ledger_balanced(store: Store) -> None:
    """The agent platform's invariant: every entry sums to zero, so all postings and all balances do."""
    assert await store.ledger.ledger_sum() == 0, "the ledger's postings do not sum to zero"
    assert await store.ledger.balances_sum() == 0, "the ledger's balances do not sum to zero"


@pytest.fixture
async def platform_store(store_target: str | Path) -> AsyncIterator[Store]:
    """A store for a test of the agent platform; its ledger must balance when the test ends."""
    async with Store.open(store_target) as store:
        yield store
        await assert_ledger_balanced(store)
