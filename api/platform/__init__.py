"""The agent platform's ``/v1`` API: thin aiohttp adapters over :mod:`runtime.platform`.

One module per route group; each has a ``setup_*`` function that :func:`setup_platform_routes`
calls. Every answer is the ``/v1`` envelope (:mod:`api.platform.envelope`).
"""

from __future__ import annotations

from aiohttp import web

from api.platform.agents import setup_agent_routes
from api.platform.ai_create import setup_ai_create_routes
from api.platform.auth import setup_auth_routes
from api.platform.envelope import setup_envelope
from api.platform.memory import setup_memory_routes
from api.platform.status import setup_status_routes
from api.platform.tasks import setup_task_routes
from api.platform.trust import setup_trust_routes
from api.platform.wallet import setup_wallet_routes
from api.web.openapi import OpenAPIRegistry

__all__ = ["setup_platform_routes"]


def setup_platform_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    setup_envelope(app)
    setup_status_routes(app, registry)
    setup_auth_routes(app, registry)
    setup_agent_routes(app, registry)
    setup_wallet_routes(app, registry)
    setup_task_routes(app, registry)
    setup_trust_routes(app, registry)
    setup_memory_routes(app, registry)
    setup_ai_create_routes(app, registry)
