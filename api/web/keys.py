"""Typed keys for what the app and each request carry."""

from __future__ import annotations

from aiohttp import web

from api.settings import Settings
from api.web.openapi import OpenAPIRegistry
from runtime.engine.chat import ChatRunner
from runtime.engine.model_registry import ModelRegistry
from runtime.features.capabilities import Capabilities
from runtime.features.capability_runs import CapabilityRuns
from runtime.features.idempotency import IdempotencyStore
from runtime.features.library import Library
from runtime.features.rate_limits import RateLimiter
from runtime.health import SandboxHealth
from runtime.platform.accounts import Accounts
from runtime.platform.daily_limit import DailyLimit
from runtime.platform.feed import Feed
from runtime.platform.ledger import Wallets
from runtime.platform.marketplace import Marketplace
from runtime.platform.memory import SharedMemory
from runtime.platform.orders import Orders
from runtime.platform.registry import Registry
from runtime.platform.trust import Trust
from runtime.store import Store
from runtime.tasks.conversations import Conversations
from runtime.tasks.manager import TaskManager
from runtime.tasks.requests import TaskStarter
from runtime.telemetry import Telemetry
from runtime.workspaces.placement import Placements
from runtime.workspaces.records import Workspaces
from sandbox.base import SandboxFactory
from sandbox.pool import WarmPool

__all__ = [
    "ACCOUNTS",
    "CAPABILITIES",
    "CAPABILITY_RUNS",
    "CHAT_RUNNER",
    "CONVERSATIONS",
    "FEED",
    "IDEMPOTENCY",
    "LIBRARY",
    "MARKETPLACE",
    "MEMORY",
    "MODELS",
    "OPENAPI",
    "ORDERS",
    "PLACEMENTS",
    "PUBLIC_RATE_LIMITER",
    "REGISTRATIONS",
    "REGISTRY",
    "REQUEST_ID",
    "SANDBOXES",
    "SANDBOX_HEALTH",
    "SANDBOX_POOL",
    "SETTINGS",
    "STORE",
    "TASKS",
    "TASK_STARTER",
    "TELEMETRY",
    "TRUST",
    "USER",
    "USER_RATE_LIMITER",
    "WALLETS",
    "WORKSPACES",
]

SETTINGS = web.AppKey("settings", Settings)
OPENAPI = web.AppKey("openapi", OpenAPIRegistry)
STORE = web.AppKey("store", Store)
SANDBOXES = web.AppKey("sandboxes", SandboxFactory)  # a protocol: only create_app knows the backend
SANDBOX_POOL = web.AppKey("sandbox_pool", WarmPool)
SANDBOX_HEALTH = web.AppKey("sandbox_health", SandboxHealth)
# With AGENT_DOCKER_HOSTS: where each workspace's sandbox and files are; None with the one engine.
PLACEMENTS: web.AppKey[Placements | None] = web.AppKey("placements")
MODELS = web.AppKey("models", ModelRegistry)
LIBRARY = web.AppKey("library", Library)
CHAT_RUNNER = web.AppKey("chat_runner", ChatRunner)
WORKSPACES = web.AppKey("workspaces", Workspaces)
CONVERSATIONS = web.AppKey("conversations", Conversations)
TASKS = web.AppKey("tasks", TaskManager)
TASK_STARTER = web.AppKey("task_starter", TaskStarter)
CAPABILITIES = web.AppKey("capabilities", Capabilities)
CAPABILITY_RUNS = web.AppKey("capability_runs", CapabilityRuns)
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyStore)
USER_RATE_LIMITER = web.AppKey("user_rate_limiter", RateLimiter)
PUBLIC_RATE_LIMITER = web.AppKey("public_rate_limiter", RateLimiter)
ACCOUNTS = web.AppKey("accounts", Accounts)
REGISTRY = web.AppKey("registry", Registry)
WALLETS = web.AppKey("wallets", Wallets)
MARKETPLACE = web.AppKey("marketplace", Marketplace)
ORDERS = web.AppKey("orders", Orders)
TRUST = web.AppKey("trust", Trust)
MEMORY = web.AppKey("memory", SharedMemory)
FEED = web.AppKey("feed", Feed)
TELEMETRY = web.AppKey("telemetry", Telemetry)  # metrics registry and tracer (runtime.telemetry)
REGISTRATIONS = web.AppKey("registrations", DailyLimit)  # registrations per client address a day

USER = web.RequestKey("user", str)
REQUEST_ID = web.RequestKey("request_id", str)
