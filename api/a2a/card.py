"""The A2A agent card, at ``/.well-known/agent-card.json`` (A2A 0.3 / 1.0) and ``/.well-known/agent.json``.

One document serves both protocol versions: the 1.0 ``supportedInterfaces`` list (JSON-RPC at
``/a2a``, versions 1.0 and 0.3) next to the 0.3 fields (``url``, ``preferredTransport``,
``protocolVersion``); each version's clients read their own fields and ignore the others. Skills
are the global capabilities (a user's own capabilities are private, so not on a public card).
Security schemes are listed when the worker has API keys: Bearer, or ``X-Api-Key``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.rest.meta import API_TITLE, API_VERSION
from api.web.keys import CAPABILITIES, SETTINGS
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.features.capabilities import Capability

__all__ = ["CARD_PATHS", "RPC_PATH", "agent_card", "setup_agent_card_routes"]

RPC_PATH = "/a2a"
CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
PROTOCOL_VERSIONS = ("1.0", "0.3")
_DESCRIPTION = (
    "Runs an agent on your message: an OpenAI-compatible model whose bash / Python tool calls run in "
    "a hardened sandbox. Each skill is an agent profile (prompt, tools, limits); name one with "
    "metadata.capability_id."
)


def _skill(capability: Capability) -> dict[str, Any]:
    skill: dict[str, Any] = {
        "id": capability.id,
        "name": capability.name,
        "description": capability.description or capability.name,
        "tags": [capability.category],
    }
    if capability.default_input:
        skill["examples"] = [capability.default_input]
    return skill


def agent_card(base_url: str, capabilities: list[Capability], authenticated: bool) -> dict[str, Any]:
    rpc_url = f"{base_url.rstrip('/')}{RPC_PATH}"
    card: dict[str, Any] = {
        "name": API_TITLE,
        "description": _DESCRIPTION,
        "version": API_VERSION,
        "protocolVersion": "0.3.0",
        "url": rpc_url,
        "preferredTransport": "JSONRPC",
        "supportedInterfaces": [
            {"url": rpc_url, "protocolBinding": "JSONRPC", "protocolVersion": version}
            for version in PROTOCOL_VERSIONS
        ],
        "documentationUrl": f"{base_url.rstrip('/')}/docs",
        "capabilities": {"streaming": True, "pushNotifications": False, "stateTransitionHistory": False},
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain"],
        "skills": [_skill(c) for c in capabilities],
    }
    if authenticated:
        card["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        }
        card["security"] = [{"bearer": []}, {"apiKey": []}]
    return card


async def serve_card(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    base = settings.public_url or str(request.url.origin())
    card = agent_card(base, request.app[CAPABILITIES].global_ones(), bool(settings.tokens))
    return web.json_response(card)


def setup_agent_card_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    for path in CARD_PATHS:
        registry.add(
            app.router,
            Operation(
                "GET",
                path,
                "The A2A agent card: JSON-RPC endpoint, protocol versions, skills (the global capabilities)",
                "a2a",
                public=True,
                responses_raw={"200": {"description": "The agent card", "content": {"application/json": {}}}},
            ),
            serve_card,
        )
