"""Bearer-token auth: every endpoint but the public ones needs a known token; each maps to a user."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import ClientMaker
from tests.fakes import Reply, ScriptedModelServer

Client = TestClient[Any, Any]

KEYS = "alice:tok-alice,bob:tok-bob"


@pytest.fixture
async def secured(make_client: ClientMaker) -> Client:
    return await make_client(api_keys=KEYS)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic dG9rLWFsaWNlOg=="},
        {"Authorization": "Bearer "},
        {"Authorization": "tok-alice"},
    ],
    ids=["none", "unknown-token", "basic-scheme", "empty-token", "no-scheme"],
)
async def test_chat_needs_a_known_bearer_token(
    secured: Client, model_server: ScriptedModelServer, headers: dict[str, str]
) -> None:
    response = await secured.post("/chat", json={"message": "hi"}, headers=headers)

    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = await response.json()
    assert body["success"] is False
    assert body["error"]
    assert model_server.requests == []


async def test_known_token_is_served(secured: Client, model_server: ScriptedModelServer) -> None:
    model_server.add(Reply("hello bob"))

    response = await secured.post(
        "/chat", json={"message": "hi"}, headers={"Authorization": "bearer tok-bob"}
    )

    assert response.status == 200
    assert (await response.json())["response"] == "hello bob"


async def test_unauthorized_is_checked_before_the_body(secured: Client) -> None:
    response = await secured.post("/chat", data=b"not json")

    assert response.status == 401


@pytest.mark.parametrize("path", ["/", "/health", "/openapi.json", "/docs", "/docs/static/swagger-ui.css"])
async def test_public_paths_need_no_token(secured: Client, path: str) -> None:
    response = await secured.get(path)

    assert response.status == 200


def test_malformed_api_keys_are_a_configuration_error() -> None:
    from pydantic import ValidationError

    from api.settings import Settings

    with pytest.raises(ValidationError, match="is not user:token"):
        Settings(api_keys="alice-without-token")


async def test_x_api_key_is_accepted_in_place_of_bearer(secured: Client) -> None:
    created = await secured.post(
        "/api/v1/workspaces", json={"workspace_id": "alices"}, headers={"Authorization": "Bearer tok-alice"}
    )
    assert created.status == 200

    as_alice = await secured.get(
        "/api/v1/workspaces", headers={"X-Api-Key": "tok-alice", "X-Platform-User-Id": "alice"}
    )
    as_bob = await secured.get("/api/v1/workspaces", headers={"X-Api-Key": "tok-bob"})

    assert as_alice.status == 200 and as_bob.status == 200
    assert "alices" in {w["workspace_id"] for w in (await as_alice.json())["workspaces"]}
    assert "alices" not in {w["workspace_id"] for w in (await as_bob.json())["workspaces"]}


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Api-Key": "wrong"},
        {"X-Api-Key": ""},
        {"X-Api-Key": "tok-alice", "X-Platform-User-Id": "bob"},
        {"Authorization": "Bearer tok-alice", "X-Platform-User-Id": "bob"},
        {"Authorization": "Bearer tok-alice", "X-Api-Key": "tok-bob"},
        {"Authorization": "Bearer tok-alice", "X-Api-Key": "wrong"},
        {"X-Platform-User-Id": "alice"},
    ],
    ids=[
        "unknown-key",
        "empty-key",
        "key-with-other-user-id",
        "bearer-with-other-user-id",
        "bearer-and-key-of-two-users",
        "bearer-and-unknown-key",
        "user-id-alone",
    ],
)
async def test_api_key_and_platform_user_headers_are_checked(
    secured: Client, model_server: ScriptedModelServer, headers: dict[str, str]
) -> None:
    response = await secured.post("/chat", json={"message": "hi"}, headers=headers)

    assert response.status == 401
    assert (await response.json())["success"] is False
    assert model_server.requests == []


async def test_bearer_and_api_key_of_the_same_user_with_its_id_are_served(secured: Client) -> None:
    headers = {"Authorization": "Bearer tok-bob", "X-Api-Key": "tok-bob", "X-Platform-User-Id": "bob"}

    response = await secured.get("/api/v1/workspaces", headers=headers)

    assert response.status == 200


async def test_without_configured_keys_the_user_id_header_is_ignored(make_client: ClientMaker) -> None:
    anonymous = await make_client()

    response = await anonymous.get("/api/v1/workspaces", headers={"X-Platform-User-Id": "someone"})

    assert response.status == 200
