"""``create_app(settings)``, the one factory the CLI and the tests use, and the worker's wiring.

Start-up is one cleanup context, :func:`_lifespan`, in two visible steps: :func:`open_resources`
opens what must be closed (the store, the Docker client and the sandbox image, the warm pool, the
model clients), then :func:`start_services` builds every service from those resources, in
dependency order, and stores each under its :mod:`api.web.keys` key. Both register their closing
on one exit stack, so shutdown runs in exactly the reverse order.

One context rather than one per resource: when start-up fails half-way, the exit stack closes
what was opened before the error leaves it. aiohttp's ``run_app`` does not clean up the contexts
that did start when a later one raises; the event loop's finalizer then closed them all at once,
which ended the worker on an unrelated ``RuntimeError: athrow(): asynchronous generator is
already running`` instead of the real error.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import structlog
from aiohttp import web

from api.a2a.routes import setup_a2a_routes
from api.capabilities.feed import setup_feed_routes
from api.capabilities.routes import setup_capability_routes
from api.capabilities.transactions import setup_transaction_routes
from api.console import setup_console, signin_redirect_middleware
from api.mcp.server import mcp_surface, setup_mcp_routes
from api.platform import setup_platform_routes
from api.rest.chat import setup_chat_routes
from api.rest.conversations import setup_conversation_routes
from api.rest.files import setup_file_routes
from api.rest.library import setup_library_routes
from api.rest.meta import setup_meta_routes
from api.rest.models import setup_model_routes
from api.rest.observability import setup_observability_routes
from api.rest.tasks import setup_task_routes
from api.rest.workspaces import setup_workspace_routes
from api.settings import Settings
from api.web.auth import auth_middleware
from api.web.errors import error_middleware
from api.web.idempotency import idempotency_keys, idempotency_middleware, setup_idempotency
from api.web.keys import (
    ACCOUNTS,
    CAPABILITIES,
    CAPABILITY_RUNS,
    CHAT_RUNNER,
    CONVERSATIONS,
    FEED,
    IDEMPOTENCY,
    LIBRARY,
    MARKETPLACE,
    MEMORY,
    MODELS,
    OPENAPI,
    ORDERS,
    PLACEMENTS,
    REGISTRY,
    SANDBOX_HEALTH,
    SANDBOX_POOL,
    SANDBOXES,
    SETTINGS,
    STORE,
    TASK_STARTER,
    TASKS,
    TELEMETRY,
    TRUST,
    WALLETS,
    WORKSPACES,
)
from api.web.logging import request_context_middleware
from api.web.openapi import OpenAPIRegistry
from api.web.rate_limits import rate_limit_middleware, setup_rate_limits
from api.web.request_line import accept_raw_utf8_request_lines
from api.web.telemetry import setup_telemetry, telemetry_middleware
from runtime.engine.chat import ChatRunner
from runtime.engine.model_registry import ModelRegistry
from runtime.features.capabilities import Capabilities
from runtime.features.capability_runs import CapabilityRuns
from runtime.features.library import Library
from runtime.platform.accounts import Accounts
from runtime.platform.feed import Feed
from runtime.platform.feed_cursor import CursorSigner, load_secret
from runtime.platform.house import HouseAgents, house_agent_ids
from runtime.platform.ledger import Wallets
from runtime.platform.marketplace import Marketplace, expiry_sweeps
from runtime.platform.memory import SharedMemory
from runtime.platform.orders import Orders
from runtime.platform.registry import Registry
from runtime.platform.trust import Trust
from runtime.store import Store
from runtime.tasks.conversations import Conversations
from runtime.tasks.leases import WorkerLease
from runtime.tasks.manager import TaskManager
from runtime.tasks.requests import TaskStarter
from runtime.telemetry import ObservedSandboxes, Telemetry
from runtime.workspaces.placement import Placements
from runtime.workspaces.records import Workspaces
from runtime.workspaces.sandboxes import WorkspaceSandboxes
from sandbox.docker_engine.engines import Engines, open_engines
from sandbox.pool import WarmPool

__all__ = ["Resources", "create_app", "open_resources", "start_services"]

MAX_REQUEST_LINE_BYTES = 16 * 1024

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Resources:
    """What the worker opens at start-up and must close at shutdown."""

    store: Store
    sandboxes: Engines
    pool: WarmPool  # the first engine's (the only one's, unless AGENT_DOCKER_HOSTS lists several)
    models: ModelRegistry


@asynccontextmanager
async def open_resources(settings: Settings, telemetry: Telemetry) -> AsyncIterator[Resources]:
    """Opened in this order, closed in reverse; a failure closes what was opened before it."""
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(Store.open(settings.database, settings.worker_instance))

        # Several engines: the sandboxes of every worker of this store carry one label, which
        # an engine's capacity counts (made once, kept in the store).
        deployment = (
            (await store.secrets.ensure("sandbox-deployment", secrets.token_bytes(8))).hex()
            if settings.docker_hosts is not None
            else None
        )
        sandboxes = await stack.enter_async_context(
            open_engines(
                settings.docker_hosts,
                image=settings.sandbox_image,
                base_image=settings.sandbox_base_image,
                limits=settings.sandbox_limits(),
                instance_id=settings.worker_instance,
                pool_size=settings.sandbox_pool_size,
                deployment=deployment,
            )
        )
        reaped = await sandboxes.reap_orphans()
        stack.push_async_callback(sandboxes.reap_orphans)
        log.info(
            "sandbox_ready",
            image=sandboxes.first.factory.image,
            engines=[engine.name for engine in sandboxes],
            instance=settings.worker_instance,
            orphans_removed=reaped,
        )

        await stack.enter_async_context(sandboxes.pools_running())  # one warm pool per engine

        models = ModelRegistry(settings.registered_models(), settings.default_model, telemetry)
        stack.push_async_callback(models.aclose)

        yield Resources(store=store, sandboxes=sandboxes, pool=sandboxes.first.pool, models=models)


async def start_services(
    app: web.Application, settings: Settings, resources: Resources, stack: AsyncExitStack
) -> None:
    """Builds every service from ``resources``, each after what it uses; ``stack`` gets their closing."""
    store, models = resources.store, resources.models
    app[STORE] = store
    telemetry = app[TELEMETRY]
    telemetry.watch_pools(lambda: [engine.pool for engine in resources.sandboxes])
    app[SANDBOXES] = ObservedSandboxes(resources.sandboxes, telemetry, "workspace")  # MCP sessions'
    app[SANDBOX_HEALTH] = resources.sandboxes  # /health asks the backend, knowing only this
    app[SANDBOX_POOL] = resources.pool
    app[MODELS] = models

    app[IDEMPOTENCY] = keys = await stack.enter_async_context(
        idempotency_keys(store, settings.idempotency_ttl)
    )
    sandboxes = resources.sandboxes

    async def clean_up_after(instance: str) -> int:
        """What a dead worker leaves besides its runs: its containers, its keys in flight."""
        removed = await sandboxes.reap_orphans(instance)
        await keys.interrupt_in_flight()
        return removed

    # The lease ends what this instance's last process left running (and, on a shared database,
    # what dead workers left) before this worker serves; given up last at shutdown.
    lease = WorkerLease(store, settings.worker_instance, settings.lease_settings(), clean_up_after)
    await stack.enter_async_context(lease.held())
    # Several engines: each workspace is placed on one, recorded in the store for every worker.
    placements = Placements(store, resources.sandboxes) if settings.docker_hosts is not None else None
    app[PLACEMENTS] = placements
    task_sandboxes = WorkspaceSandboxes(
        ObservedSandboxes(resources.sandboxes, telemetry, "workspace"),
        settings.workspace_idle_timeout,
        placements=placements,
    )
    app[WORKSPACES] = workspaces = Workspaces(
        store, settings.workspace_settings(), sandboxes=task_sandboxes, placements=placements
    )
    await workspaces.start()
    stack.push_async_callback(workspaces.aclose)  # after the sandboxes (closed before, in reverse)
    app[LIBRARY] = library = Library(store)
    # Ephemeral sandboxes: a spare of an engine's pool, or a cold start, on the engine with room.
    app[CHAT_RUNNER] = ChatRunner(
        store,
        models.get(None),
        ObservedSandboxes(resources.sandboxes, telemetry, "ephemeral"),
        settings.loop_settings(),
        telemetry,
    )

    stack.push_async_callback(task_sandboxes.aclose)
    app[CONVERSATIONS] = conversations = Conversations(store)
    timing = settings.lease_settings()
    app[TASKS] = tasks = TaskManager(
        store,
        conversations,
        task_sandboxes,
        settings.task_limits(),
        elsewhere_wait=timing.lease_seconds + 2 * timing.heartbeat_seconds,
        telemetry=telemetry,
    )
    lease.on_lost(tasks.let_go_of_ended)  # cut off past its lease: its tasks were ended elsewhere
    telemetry.watch_tasks(tasks)
    app[TASK_STARTER] = starter = TaskStarter(
        workspaces, conversations, library, models, tasks, settings.loop_settings()
    )

    app[CAPABILITIES] = capabilities = Capabilities(store, settings.global_capabilities())
    app[CAPABILITY_RUNS] = capability_runs = CapabilityRuns(store, capabilities, starter)

    # The agent platform: the operator's users and the global capabilities are its nodes.
    app[ACCOUNTS] = accounts = Accounts(store, settings.platform_settings())
    await accounts.ensure_operators(settings.tokens.values())
    await accounts.ensure_house_agents(settings.global_capabilities())
    app[REGISTRY] = Registry(store)
    app[WALLETS] = Wallets(store)
    app[TRUST] = Trust(store)
    app[MEMORY] = SharedMemory(store)
    # The cursor secret is the database's, so every worker on it accepts the others' cursors; the
    # data directory's key (the secret before there could be several workers) seeds it.
    secret = await store.secrets.ensure("feed-cursor", load_secret(settings.data_dir / "feed-cursor.key"))
    app[FEED] = Feed(store, CursorSigner(secret))
    house_ids = await house_agent_ids(store, (c.id for c in capabilities.global_ones()))
    house = HouseAgents(store, house_ids, capability_runs, tasks, workspaces)
    # What a stopped worker would have settled as its tasks ended; several workers: a task younger than the
    # lease with no final event may still be starting in a live worker, and a sweep settles later.
    grace = 0.0 if store.dialect == "sqlite" else timing.lease_seconds
    await house.reconcile(grace)  # house tasks a stopped worker left in progress: settled before serving
    lease.after_cleanup(lambda: house.reconcile(grace))
    tasks.on_finished(house.settle_finished)  # a queued task ends on any worker: that one settles it
    app[MARKETPLACE] = marketplace = Marketplace(store, house)
    app[ORDERS] = orders = Orders(store, capabilities, capability_runs, tasks)
    await orders.reconcile(grace)  # orders a stopped worker left open: settled before serving
    lease.after_cleanup(lambda: orders.reconcile(grace))
    tasks.on_finished(orders.settle_finished)
    # Every worker takes tasks from the queue when it has a free slot (once what settles their ends
    # is in place); stopped by the drain.
    await stack.enter_async_context(tasks.dispatching(starter.rebuild))
    await stack.enter_async_context(expiry_sweeps(marketplace, settings.task_expiry_interval))

    await stack.enter_async_context(mcp_surface(app))  # reads the services stored above


async def _lifespan(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with AsyncExitStack() as stack:
        # Closed last: the spans of everything that closes before it are exported.
        stack.push_async_callback(asyncio.to_thread, app[TELEMETRY].close)
        resources = await stack.enter_async_context(open_resources(settings, app[TELEMETRY]))
        await start_services(app, settings, resources, stack)
        yield


async def _drain_tasks(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for open requests: ending the tasks first lets their
    # SSE streams and long polls see the final event and close, instead of holding up the exit.
    await app[TASKS].drain()


def create_app(settings: Settings, telemetry: Telemetry | None = None) -> web.Application:
    """The worker's app; ``telemetry`` (tests give theirs) defaults to the settings' (OTLP traces if set)."""
    accept_raw_utf8_request_lines()
    app = web.Application(
        middlewares=[
            telemetry_middleware,  # outermost: the request's span is the parent of all it does
            request_context_middleware,
            error_middleware,
            signin_redirect_middleware,  # a console page without credentials: sign in, not a 401
            auth_middleware,
            rate_limit_middleware,
            idempotency_middleware,
        ],
        client_max_size=settings.max_request_bytes,
        # Request lines up to 16 KiB (aiohttp: 8190 bytes): a query at its documented limits, sent as
        # percent-encoded UTF-8 (12 bytes a character), must reach validation and get a JSON 400
        # with a reason, not the HTTP parser's plain-text one.
        handler_args={"max_line_size": MAX_REQUEST_LINE_BYTES},
    )
    app[SETTINGS] = settings
    setup_telemetry(app, telemetry or Telemetry.exporting(settings.traces_endpoint()))
    setup_rate_limits(app)
    setup_idempotency(app)
    registry = OpenAPIRegistry()
    app[OPENAPI] = registry
    setup_meta_routes(app, registry)
    setup_observability_routes(app, registry)
    setup_chat_routes(app, registry)
    setup_workspace_routes(app, registry)
    setup_file_routes(app, registry)
    setup_library_routes(app, registry)
    setup_model_routes(app, registry)
    setup_conversation_routes(app, registry)
    setup_task_routes(app, registry)
    setup_capability_routes(app, registry)
    setup_feed_routes(app, registry)
    setup_transaction_routes(app, registry)
    setup_mcp_routes(app, registry)
    setup_a2a_routes(app, registry)
    setup_platform_routes(app, registry)
    setup_console(app)
    app.cleanup_ctx.append(_lifespan)
    app.on_shutdown.append(_drain_tasks)
    return app
