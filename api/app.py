"""``create_app(settings)``: the one factory the CLI and the tests use.

Each resource (store, Docker client + sandbox image, model client) is owned by one cleanup
context, opened in order at start-up and closed in reverse at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import docker
import structlog
from aiohttp import web

from api.a2a.routes import setup_a2a_routes
from api.capabilities.routes import capabilities_ctx, setup_capability_routes
from api.mcp.server import mcp_ctx, setup_mcp_routes
from api.rest.chat import setup_chat_routes
from api.rest.conversations import setup_conversation_routes
from api.rest.files import setup_file_routes
from api.rest.library import setup_library_routes
from api.rest.meta import setup_meta_routes
from api.rest.models import setup_model_routes
from api.rest.tasks import setup_task_routes
from api.rest.workspaces import setup_workspace_routes
from api.settings import Settings
from api.web.auth import auth_middleware
from api.web.errors import error_middleware
from api.web.idempotency import idempotency_ctx, idempotency_middleware, setup_idempotency
from api.web.keys import (
    CHAT_RUNNER,
    CONVERSATIONS,
    DOCKER,
    LIBRARY,
    MODELS,
    OPENAPI,
    SANDBOX_POOL,
    SANDBOXES,
    SETTINGS,
    STORE,
    TASK_STARTER,
    TASKS,
    WORKSPACES,
)
from api.web.logging import request_context_middleware
from api.web.openapi import OpenAPIRegistry
from api.web.rate_limits import rate_limit_middleware, setup_rate_limits
from runtime.engine.chat import ChatRunner
from runtime.engine.model_registry import ModelRegistry
from runtime.features.library import Library
from runtime.store import Store
from runtime.tasks.conversations import Conversations
from runtime.tasks.manager import TaskManager
from runtime.tasks.requests import TaskStarter
from runtime.workspaces.records import Workspaces
from runtime.workspaces.sandboxes import WorkspaceSandboxes
from sandbox.docker_engine.backend import DockerSandboxFactory
from sandbox.docker_engine.image import ensure_image
from sandbox.pool import WarmPool

__all__ = ["create_app"]

log = structlog.get_logger(__name__)


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    async with Store.open(app[SETTINGS].db_path) as store:
        interrupted = await store.fail_interrupted_runs(
            "interrupted: the worker stopped before the run finished"
        )
        if interrupted:
            log.warning("runs_interrupted", count=len(interrupted), run_ids=interrupted)
        app[STORE] = store
        app[WORKSPACES] = Workspaces(store, app[SETTINGS].data_dir / "workspaces")
        app[LIBRARY] = Library(store)
        yield


async def _docker_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = await asyncio.to_thread(docker.from_env)
    try:
        await ensure_image(client, settings.sandbox_image, settings.sandbox_base_image, log)
        factory = DockerSandboxFactory(
            client, settings.sandbox_image, settings.sandbox_limits(), settings.worker_instance
        )
        reaped = await factory.reap_orphans()
        log.info(
            "sandbox_ready",
            image=settings.sandbox_image,
            instance=settings.worker_instance,
            orphans_removed=reaped,
        )
        app[DOCKER] = client
        app[SANDBOXES] = factory
        yield
        await factory.reap_orphans()
    finally:
        await asyncio.to_thread(client.close)


async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    async with WarmPool(app[SANDBOXES], app[SETTINGS].sandbox_pool_size) as pool:
        app[SANDBOX_POOL] = pool
        yield


async def _model_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    models = ModelRegistry(settings.registered_models(), settings.default_model)
    app[MODELS] = models
    app[CHAT_RUNNER] = ChatRunner(app[STORE], models.get(None), app[SANDBOX_POOL], settings.loop_settings())
    try:
        yield
    finally:
        await models.aclose()


async def _tasks_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    sandboxes = WorkspaceSandboxes(app[SANDBOXES], settings.workspace_idle_timeout)
    conversations = Conversations(app[STORE])
    manager = TaskManager(app[STORE], conversations, sandboxes, settings.task_limits())
    app[CONVERSATIONS] = conversations
    app[TASKS] = manager
    app[TASK_STARTER] = TaskStarter(
        app[WORKSPACES], conversations, app[LIBRARY], app[MODELS], manager, settings.loop_settings()
    )
    try:
        yield
    finally:
        await sandboxes.aclose()


async def _drain_tasks(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for open requests: ending the tasks first lets their
    # SSE streams and long polls see the final event and close, instead of holding up the exit.
    if TASKS in app:  # absent when start-up failed before the task manager existed
        await app[TASKS].drain()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[
            request_context_middleware,
            error_middleware,
            auth_middleware,
            rate_limit_middleware,
            idempotency_middleware,
        ],
        client_max_size=settings.max_request_bytes,
    )
    app[SETTINGS] = settings
    setup_rate_limits(app)
    setup_idempotency(app)
    registry = OpenAPIRegistry()
    app[OPENAPI] = registry
    setup_meta_routes(app, registry)
    setup_chat_routes(app, registry)
    setup_workspace_routes(app, registry)
    setup_file_routes(app, registry)
    setup_library_routes(app, registry)
    setup_model_routes(app, registry)
    setup_conversation_routes(app, registry)
    setup_task_routes(app, registry)
    setup_capability_routes(app, registry)
    setup_mcp_routes(app, registry)
    setup_a2a_routes(app, registry)
    app.cleanup_ctx.extend(
        [
            _store_ctx,
            idempotency_ctx,
            _docker_ctx,
            _pool_ctx,
            _model_ctx,
            _tasks_ctx,
            capabilities_ctx,
            mcp_ctx,
        ]
    )
    app.on_shutdown.append(_drain_tasks)
    return app
