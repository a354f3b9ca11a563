"""Accounts of the agent platform: who is a node, and the keys and passwords that say so.

Three kinds of node share one namespace of ids:

- ``registered``: signed up on ``POST /v1/auth/register`` (only while the operator has set
  ``AGENT_REGISTRATION=open``); they log in with a password and hold ``fg_live_...`` API keys;
- ``operator``: each user of ``AGENT_API_KEYS`` (node id = the user name), made a node at start-up;
- ``house``: each global capability of the worker (node id = the capability id), an agent that
  does paid tasks in the worker's own sandboxes.

Registered and operator nodes get ``signup_credits`` once, as a recorded grant in the same
transaction that creates the node. Passwords are kept as argon2id hashes, API keys as SHA-256
digests (a key is random and long, so a fast hash is enough; a password is not).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Iterable
from typing import Annotated

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from runtime.errors import ConflictError, ForbiddenError
from runtime.features.capabilities import Capability
from runtime.platform.config import PlatformConfig
from runtime.store import Store
from runtime.store.platform_ledger import grant
from runtime.store.platform_nodes import (
    add_api_key,
    insert_node,
    node_kind,
    set_capabilities,
    update_nickname,
)

__all__ = [
    "KEY_PREFIX",
    "MAX_CAPABILITIES",
    "NODE_ID_PATTERN",
    "Accounts",
    "CapabilityName",
    "Credentials",
    "Login",
    "Registration",
    "key_digest",
]

log = structlog.get_logger(__name__)

KEY_PREFIX = "fg_live_"
NODE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_CAPABILITIES = 50
# The user every request is on a worker without AGENT_API_KEYS: a node by that name would share its
# workspaces and tasks.
RESERVED_IDS = frozenset({"anonymous"})
CapabilityName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class Registration(BaseModel):
    model_config = ConfigDict(extra="ignore")

    username: str = Field(pattern=NODE_ID_PATTERN, description="The node id: 1-64 letters, digits, . _ -")
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    capabilities: list[CapabilityName] = Field(
        default_factory=list, max_length=MAX_CAPABILITIES, description="What the node can do (tags)."
    )
    password: str | None = Field(
        None, min_length=1, max_length=1024, description="For POST /v1/auth/login; without one, keys only."
    )
    nickname: str | None = Field(None, min_length=1, max_length=64, description="Default: the username.")


class Login(BaseModel):
    model_config = ConfigDict(extra="ignore")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Credentials(BaseModel):
    api_key: str = Field(
        description="Send as Authorization: Bearer <api_key>. Shown once: only its hash is kept."
    )
    node_id: str


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


class Accounts:
    def __init__(self, store: Store, config: PlatformConfig) -> None:
        self._store = store
        self._config = config
        self._hasher = PasswordHasher()
        # Verified against when the user does not exist, so a login takes as long either way.
        self._decoy = self._hasher.hash(secrets.token_hex(16))

    @property
    def registration_open(self) -> bool:
        return self._config.registration == "open"

    async def register(self, registration: Registration) -> Credentials:
        if not self.registration_open:
            raise ForbiddenError(
                "registration is closed on this worker; its operator opens it with AGENT_REGISTRATION=open"
            )
        password_hash = None
        if registration.password is not None:
            password_hash = await asyncio.to_thread(self._hasher.hash, registration.password)
        if registration.username in RESERVED_IDS:
            raise ConflictError(f"username {registration.username!r} is taken")
        key = new_key()
        async with self._store.transaction() as conn:
            created = await insert_node(
                conn,
                registration.username,
                "registered",
                registration.nickname or registration.username,
                email=registration.email,
                password_hash=password_hash,
            )
            if not created:
                raise ConflictError(f"username {registration.username!r} is taken")
            await set_capabilities(conn, registration.username, registration.capabilities)
            await add_api_key(conn, key_digest(key), registration.username)
            if self._config.signup_credits:
                await grant(conn, registration.username, self._config.signup_credits * 100, "signup")
        log.info("node_registered", node_id=registration.username)
        return Credentials(api_key=key, node_id=registration.username)

    async def login(self, login: Login) -> Credentials | None:
        """A new API key for the node if the password is its own; None otherwise."""
        stored = await self._store.nodes.password_hash(login.username)
        try:
            await asyncio.to_thread(self._hasher.verify, stored or self._decoy, login.password)
        except (VerificationError, InvalidHashError):
            return None
        if stored is None:
            return None
        key = new_key()
        async with self._store.transaction() as conn:
            await add_api_key(conn, key_digest(key), login.username)
        return Credentials(api_key=key, node_id=login.username)

    async def node_of_key(self, key: str) -> str | None:
        """The node an API key belongs to, or None."""
        return await self._store.nodes.node_for_key(key_digest(key))

    async def ensure_operators(self, users: Iterable[str]) -> None:
        """Each operator user is a node; a new one gets the signup grant (once, ever)."""
        for user in sorted(set(users)):
            async with self._store.transaction() as conn:
                created = await insert_node(conn, user, "operator", user)
                if created and self._config.signup_credits:
                    await grant(conn, user, self._config.signup_credits * 100, "signup")

    async def ensure_house_agents(self, capabilities: Iterable[Capability]) -> None:
        """Each global capability is a house node, listing its id and category as capabilities."""
        for capability in capabilities:
            async with self._store.transaction() as conn:
                if not await insert_node(conn, capability.id, "house", capability.name):
                    existing = await node_kind(conn, capability.id)
                    if existing != "house":
                        log.warning("house_agent_id_taken", agent_id=capability.id, taken_by=existing)
                        continue
                    await update_nickname(conn, capability.id, capability.name)
                await set_capabilities(conn, capability.id, [capability.id, capability.category])
