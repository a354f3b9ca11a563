"""Sandboxes on several Docker engines (``AGENT_DOCKER_HOSTS``): one client, factory and warm pool each.

:class:`Engines` is the backend the worker holds. It starts a sandbox on the engine its request
names (a workspace's, placed by :mod:`runtime.workspaces.placement`), or, for an ephemeral one (a
``/chat`` run), on the engine with a spare ready and room left, else the one with the most room.
Room is the engine's capacity minus the sandboxes on it now, counted by the engine itself (the
containers carrying our label, every worker's), so workers sharing engines share their capacity
without talking to each other. Counting costs a round trip per engine: with one engine, the
default, nothing is counted and a sandbox starts exactly as it did before engines were a list.

An engine is reached as docker-py reaches it: ``unix://`` (the engine on this host), ``tcp://``
with TLS client certificates, or ``ssh://`` (the ``ssh`` binary, so ``~/.ssh/config`` and the agent
apply). Its workspaces' files are host directories bind-mounted (``files: bind``, the default for
``unix://``: the engine sees this host's paths) or Docker volumes on the engine itself (``files:
volume``, the default otherwise: a remote engine has no path to our disk).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import docker
import docker.constants
import docker.errors
import docker.tls
import requests.exceptions
import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sandbox.base import EngineStatus, Sandbox, SandboxLimits, SandboxRequest
from sandbox.docker_engine.backend import LABEL, LABEL_DEPLOYMENT, DockerSandboxFactory
from sandbox.docker_engine.image import ensure_image
from sandbox.errors import SandboxStartError
from sandbox.pool import WarmPool

__all__ = ["LOCAL_ENGINE", "DockerEngine", "EngineConfig", "EngineTLS", "Engines", "open_engines"]

log = structlog.get_logger(__name__)

LOCAL_ENGINE = "local"  # the engine's name when AGENT_DOCKER_HOSTS is unset (docker.from_env)
_PROBE_TIMEOUT = 5.0  # a ping and a container count; an engine slower than this is taken as gone
_NAME = r"^[a-z0-9][a-z0-9_.-]{0,31}$"


class EngineTLS(BaseModel):
    """The TLS material for a ``tcp://`` engine run with ``dockerd --tlsverify``."""

    model_config = ConfigDict(extra="forbid")
    ca: Path = Field(description="CA certificate the engine's certificate must be signed by.")
    cert: Path = Field(description="This worker's client certificate (signed by the CA the engine trusts).")
    key: Path = Field(description="The client certificate's private key.")


class EngineConfig(BaseModel):
    """One entry of ``AGENT_DOCKER_HOSTS``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        pattern=_NAME,
        description="Stable name, recorded with every workspace placed on it: keep it when the URL changes.",
    )
    url: str = Field(
        description="docker-py base URL: unix:///var/run/docker.sock, tcp://host:2376, ssh://user@host."
    )
    capacity: int | None = Field(
        None, ge=1, description="The most sandboxes (every worker's, spares included) on it; None: no limit."
    )
    tls: EngineTLS | None = Field(None, description="Client TLS for a tcp:// engine; required for tcp://.")
    files: Literal["bind", "volume"] | None = Field(
        None,
        description="bind: host directories (default for unix://); volume: a Docker volume per workspace.",
    )
    pool_size: int | None = Field(
        None, ge=0, le=64, description="Warm spares kept on this engine; None: AGENT_SANDBOX_POOL_SIZE."
    )

    @model_validator(mode="after")
    def _check_url(self) -> EngineConfig:
        scheme = self.url.split("://", 1)[0] if "://" in self.url else ""
        if scheme not in ("unix", "tcp", "ssh"):
            raise ValueError(
                f"engine {self.name}: url must start with unix://, tcp:// or ssh://, not {self.url!r}"
            )
        if scheme == "tcp" and self.tls is None:
            raise ValueError(
                f"engine {self.name}: a tcp:// engine needs tls {{ca, cert, key}}: an engine's API is root "
                "on its host, so it is never reached in clear"
            )
        if scheme != "tcp" and self.tls is not None:
            raise ValueError(f"engine {self.name}: tls applies to tcp:// engines only")
        if self.files is None:
            self.files = "bind" if scheme == "unix" else "volume"
        return self


def connect(config: EngineConfig, timeout: float | None = None) -> docker.DockerClient:
    """A client of the engine ``config`` describes, its API version asked of the engine (it blocks)."""
    tls: docker.tls.TLSConfig | bool = False
    if config.tls is not None:
        tls = docker.tls.TLSConfig(
            client_cert=(str(config.tls.cert), str(config.tls.key)), ca_cert=str(config.tls.ca), verify=True
        )
    kwargs: dict[str, Any] = {
        "base_url": config.url,
        "tls": tls,
        "use_ssh_client": config.url.startswith("ssh://"),
        **({"timeout": timeout} if timeout is not None else {}),
    }
    # requests verifies against REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE when one is set, in place of the
    # engine's CA, and docker-py asks the engine its API version before we could say otherwise: so
    # the version is asked first by a client that ignores the environment, then given.
    with docker.APIClient(version=docker.constants.MINIMUM_DOCKER_API_VERSION, **kwargs) as probe:
        probe.trust_env = False
        version = probe.version(api_version=False)["ApiVersion"]
    client = docker.DockerClient(version=version, **kwargs)
    client.api.trust_env = False
    return client


@dataclass
class DockerEngine:
    """One engine: the client sandboxes are made with, a quick one for probes, its factory and pool."""

    config: EngineConfig
    client: docker.DockerClient
    probe_client: docker.DockerClient
    factory: DockerSandboxFactory
    pool: WarmPool

    deployment: str | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def counted(self) -> str:
        """The label of the sandboxes its capacity counts: this deployment's (every worker's), or any."""
        return f"{LABEL_DEPLOYMENT}={self.deployment}" if self.deployment else f"{LABEL}=1"

    async def status(self) -> EngineStatus:
        files = self.config.files or "bind"
        try:
            found = await asyncio.to_thread(
                self.probe_client.api.containers, all=True, filters={"label": self.counted}
            )
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as e:
            problem = f"{type(e).__name__}: {e}"
            return EngineStatus(
                name=self.name, files=files, capacity=self.config.capacity, sandboxes=None, problem=problem
            )
        return EngineStatus(name=self.name, files=files, capacity=self.config.capacity, sandboxes=len(found))


class Engines:
    """The worker's sandbox backend over one or more engines; :meth:`pools_running` runs their pools."""

    def __init__(self, engines: list[DockerEngine], left_out: dict[str, EngineStatus] | None = None) -> None:
        self._engines = {engine.name: engine for engine in engines}
        self._single = engines[0] if len(engines) == 1 and not left_out else None
        # Configured, but not usable when the worker started: unreachable to placement, not unknown.
        self._left_out = left_out or {}

    @property
    def first(self) -> DockerEngine:
        return next(iter(self._engines.values()))

    def __iter__(self) -> Iterator[DockerEngine]:
        return iter(self._engines.values())

    def get(self, name: str) -> DockerEngine | None:
        return self._engines.get(name)

    @asynccontextmanager
    async def open(self, request: SandboxRequest) -> AsyncIterator[Sandbox]:
        """On the request's engine; an ephemeral request without one on the engine with most room."""
        engine = await self._engine_for(request)
        factory = engine.pool if request.ephemeral else engine.factory
        async with factory.open(request) as sandbox:
            yield sandbox

    async def _engine_for(self, request: SandboxRequest) -> DockerEngine:
        if request.engine is not None:
            engine = self._engines.get(request.engine)
            if engine is None:
                raise SandboxStartError(f"no Docker engine is named {request.engine!r} (AGENT_DOCKER_HOSTS)")
            return engine
        if self._single is not None:
            return self._single
        statuses = {s.name: s for s in await self.engines()}
        usable = [e for e in self._engines.values() if statuses[e.name].room > 0]
        if not usable:
            raise SandboxStartError(_no_room(statuses.values()))
        # A ready spare first (it is why the pool exists), then the most room.
        return max(usable, key=lambda e: (e.pool.ready > 0, statuses[e.name].room))

    @asynccontextmanager
    async def pools_running(self) -> AsyncIterator[None]:
        """Each engine's warm pool filled while the block runs; spares removed at its end."""
        async with AsyncExitStack() as stack:
            for engine in self._engines.values():
                await stack.enter_async_context(engine.pool)
            yield

    async def reap_orphans(self, instance_id: str | None = None) -> int:
        """Remove every container of this instance (or ``instance_id``'s) on every engine reachable now."""
        if self._single is not None:  # the one engine unreachable is the caller's error, as ever
            return await self._single.factory.reap_orphans(instance_id)
        found = await asyncio.gather(*(_reap(e, instance_id) for e in self._engines.values()))
        return sum(found)

    async def engines(self) -> list[EngineStatus]:
        found = await asyncio.gather(*(e.status() for e in self._engines.values()))
        return [*found, *self._left_out.values()]

    async def probe(self, name: str) -> EngineStatus | None:
        engine = self._engines.get(name)
        return self._left_out.get(name) if engine is None else await engine.status()

    async def problem(self) -> str | None:
        """Why no sandbox could start now: with several engines, only when none of them could."""
        if self._single is not None:  # the one engine's own words, as before engines were a list
            return await self._single.factory.problem()
        problems = []
        for engine in self._engines.values():
            problem = await engine.factory.problem()
            if problem is None:
                return None
            problems.append(f"{engine.name}: {problem}")
        return "; ".join(problems)


async def _reap(engine: DockerEngine, instance_id: str | None) -> int:
    try:
        return await engine.factory.reap_orphans(instance_id)
    except Exception as e:  # an engine gone: what is left there is reaped when it and a worker next meet
        log.warning("docker_engine_unreachable_for_reaping", engine=engine.name, error=str(e))
        return 0


def _no_room(statuses: Iterable[EngineStatus]) -> str:
    parts = [
        f"{s.name}: unreachable" if s.sandboxes is None else f"{s.name}: {s.sandboxes} of {s.capacity}"
        for s in statuses
    ]
    return "every Docker engine is full or unreachable (" + ", ".join(parts) + ")"


@asynccontextmanager
async def open_engines(
    configs: list[EngineConfig] | None,
    *,
    image: str | None,
    base_image: str | None,
    limits: SandboxLimits,
    instance_id: str,
    pool_size: int,
    deployment: str | None = None,
) -> AsyncIterator[Engines]:
    """Connect to each engine and make sure it has the sandbox image; their pools start with
    :meth:`Engines.pools_running`.

    ``deployment`` labels every sandbox: the workers sharing one store, whose sandboxes an
    engine's capacity counts (a test's, or another team's, on the same engine are not theirs).
    ``configs`` None: the one engine of the environment (``DOCKER_HOST`` or the local socket), as
    ever. With a list, an engine that cannot be made ready is left out with a warning (its
    workspaces move on their next use, as when it goes away later); none ready stops the worker.
    """
    async with AsyncExitStack() as stack:
        engines: list[DockerEngine] = []
        left_out: dict[str, EngineStatus] = {}
        if configs is None:
            client = await asyncio.to_thread(docker.from_env)
            stack.push_async_callback(asyncio.to_thread, client.close)
            config = EngineConfig(name=LOCAL_ENGINE, url="unix:///var/run/docker.sock", files="bind")
            engines.append(
                await _ready(
                    config, client, client, image, base_image, limits, instance_id, pool_size, deployment
                )
            )
        else:
            for config in configs:
                try:
                    client = await asyncio.to_thread(connect, config)
                    stack.push_async_callback(asyncio.to_thread, client.close)
                    probe = await asyncio.to_thread(connect, config, _PROBE_TIMEOUT)
                    stack.push_async_callback(asyncio.to_thread, probe.close)
                    engines.append(
                        await _ready(
                            config,
                            client,
                            probe,
                            image,
                            base_image,
                            limits,
                            instance_id,
                            pool_size,
                            deployment,
                        )
                    )
                except Exception as e:
                    log.warning("docker_engine_unavailable", engine=config.name, url=config.url, error=str(e))
                    left_out[config.name] = EngineStatus(
                        name=config.name,
                        files=config.files or "volume",
                        capacity=config.capacity,
                        sandboxes=None,
                        problem=f"not usable since the worker started ({type(e).__name__}: {e}); restart it to retry",
                    )
            if not engines:
                raise SandboxStartError(
                    "no Docker engine of AGENT_DOCKER_HOSTS could be used (see the warnings above)"
                )
        yield Engines(engines, left_out)


async def _ready(
    config: EngineConfig,
    client: docker.DockerClient,
    probe: docker.DockerClient,
    image: str | None,
    base_image: str | None,
    limits: SandboxLimits,
    instance_id: str,
    pool_size: int,
    deployment: str | None,
) -> DockerEngine:
    tag = await ensure_image(client, image, base_image, log)
    factory = DockerSandboxFactory(client, tag, limits, instance_id, deployment)
    size = pool_size if config.pool_size is None else config.pool_size
    log.info("sandbox_engine_ready", engine=config.name, url=config.url, image=tag, files=config.files)
    return DockerEngine(
        config=config,
        client=client,
        probe_client=probe,
        factory=factory,
        pool=WarmPool(factory, size),
        deployment=deployment,
    )
