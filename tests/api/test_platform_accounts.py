"""The agent platform's accounts on ``/v1``: status, registration (closed by default), login, API keys
that are users of the whole worker, the signup grant, and the /v1 envelope on every error."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.web.keys import ACCOUNTS, STORE
from tests.api.conftest import ClientMaker, v1_error, v1_ok

pytestmark = pytest.mark.both_engines

OPERATORS = "alice:tok-a,bob:tok-b"
ALICE = {"Authorization": "Bearer tok-a"}
NODE = {
    "username": "my_node",
    "email": "node@example.com",
    "capabilities": ["stock_analysis", "text_generation"],
}


@pytest.fixture
async def open_platform(make_platform: ClientMaker) -> TestClient[Any, Any]:
    return await make_platform(api_keys=OPERATORS, registration="open")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def register(client: TestClient[Any, Any], **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = await v1_ok(await client.post("/v1/auth/register", json={**NODE, **fields}))
    return data


async def test_status_needs_no_key_and_says_whether_registration_is_open(make_platform: ClientMaker) -> None:
    client = await make_platform(api_keys=OPERATORS)
    status = await v1_ok(await client.get("/v1/status"))
    assert status["status"] == "ok" and status["registration"] == "closed"


async def test_registration_is_closed_by_default_and_says_how_to_open_it(make_platform: ClientMaker) -> None:
    client = await make_platform(api_keys=OPERATORS)
    message = await v1_error(await client.post("/v1/auth/register", json=NODE), 403)
    assert "AGENT_REGISTRATION=open" in message
    assert not await client.app[STORE].nodes.node_exists("my_node")


async def test_a_registered_key_is_a_node_with_the_signup_grant(open_platform: TestClient[Any, Any]) -> None:
    credentials = await register(open_platform)
    assert credentials["node_id"] == "my_node"
    assert credentials["api_key"].startswith("fg_live_")
    key = bearer(credentials["api_key"])
    wallet = await v1_ok(await open_platform.get("/v1/wallet", headers=key))
    assert wallet == {"balance": 1000, "frozen": 0, "total_earned": 0, "total_spent": 0}
    statement = await v1_ok(await open_platform.get("/v1/transactions", headers=key))
    assert statement["total"] == 1
    [entry] = statement["items"]
    assert (entry["type"], entry["amount"], entry["balance_after"], entry["task_id"]) == (
        "grant",
        1000,
        1000,
        None,
    )
    agent = await v1_ok(await open_platform.get("/v1/agents/my_node", headers=key))
    assert agent["capabilities"] == ["stock_analysis", "text_generation"]
    assert agent["kind"] == "registered" and agent["nickname"] == "my_node"


async def test_the_key_is_stored_only_as_a_hash(open_platform: TestClient[Any, Any]) -> None:
    credentials = await register(open_platform, password="s3cret")
    store = open_platform.app[STORE]
    assert await store.nodes.node_for_key(credentials["api_key"]) is None
    stored = await store.nodes.password_hash("my_node")
    assert stored is not None and stored.startswith("$argon2id$") and "s3cret" not in stored


async def test_a_registered_key_is_a_user_of_the_whole_worker(open_platform: TestClient[Any, Any]) -> None:
    key = bearer((await register(open_platform))["api_key"])
    workspaces = await open_platform.get("/api/v1/workspaces", headers=key)
    assert workspaces.status == 200, await workspaces.text()
    other = await open_platform.get("/api/v1/workspaces", headers=bearer("fg_live_not-a-key"))
    assert other.status == 401


async def test_a_taken_username_is_a_conflict(open_platform: TestClient[Any, Any]) -> None:
    await register(open_platform)
    assert "taken" in await v1_error(await open_platform.post("/v1/auth/register", json=NODE), 409)
    for taken in ("alice", "general", "anonymous"):  # an operator user, a house agent, the anonymous user
        response = await open_platform.post("/v1/auth/register", json={**NODE, "username": taken})
        await v1_error(response, 409)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "x@example.com"},
        {"username": "", "email": "x@example.com"},
        {"username": "has space", "email": "x@example.com"},
        {"username": "n:1", "email": "x@example.com"},
        {"username": "ok", "email": "not-an-email"},
        {"username": "ok", "email": "x@example.com", "capabilities": "coding"},
        {"username": "ok", "email": "x@example.com", "capabilities": [""]},
    ],
)
async def test_a_missing_or_bad_field_is_a_400(
    open_platform: TestClient[Any, Any], body: dict[str, Any]
) -> None:
    await v1_error(await open_platform.post("/v1/auth/register", json=body), 400)


async def test_login_with_the_right_password_gives_a_new_key(open_platform: TestClient[Any, Any]) -> None:
    first = await register(open_platform, password="demo")
    login = await v1_ok(
        await open_platform.post("/v1/auth/login", json={"username": "my_node", "password": "demo"})
    )
    assert login["node_id"] == "my_node" and login["api_key"] != first["api_key"]
    me = await v1_ok(await open_platform.get("/v1/wallet", headers=bearer(login["api_key"])))
    assert me["balance"] == 1000
    for wrong in ({"username": "my_node", "password": "nope"}, {"username": "nobody", "password": "demo"}):
        await v1_error(await open_platform.post("/v1/auth/login", json=wrong), 401)


async def test_a_node_registered_without_a_password_cannot_log_in(
    open_platform: TestClient[Any, Any],
) -> None:
    await register(open_platform)
    response = await open_platform.post("/v1/auth/login", json={"username": "my_node", "password": "x"})
    await v1_error(response, 401)


async def test_registrations_are_limited_per_client_address(make_platform: ClientMaker) -> None:
    client = await make_platform(api_keys=OPERATORS, registration="open", registrations_per_day=2)
    for n in range(2):
        await register(client, username=f"node{n}")
    response = await client.post("/v1/auth/register", json={**NODE, "username": "node2"})
    assert "a day" in await v1_error(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    assert not await client.app[STORE].nodes.node_exists("node2")


async def test_every_other_route_needs_a_key_and_errors_are_in_the_envelope(
    open_platform: TestClient[Any, Any],
) -> None:
    for path in ("/v1/agents", "/v1/wallet", "/v1/transactions", "/v1/agents/alice"):
        await v1_error(await open_platform.get(path), 401)
        await v1_error(await open_platform.get(path, headers=bearer("fg_live_unknown")), 401)
    await v1_error(await open_platform.get("/v1/no-such-route", headers=ALICE), 404)
    await v1_error(await open_platform.post("/v1/auth/register", data=b"{not json"), 400)


async def test_without_operator_keys_the_platform_still_needs_a_key(make_platform: ClientMaker) -> None:
    client = await make_platform(registration="open")  # no AGENT_API_KEYS: the worker is anonymous
    await v1_error(await client.get("/v1/wallet"), 401)
    key = bearer((await register(client))["api_key"])
    assert (await v1_ok(await client.get("/v1/wallet", headers=key)))["balance"] == 1000


async def test_operator_users_are_nodes_granted_once(make_platform: ClientMaker) -> None:
    client = await make_platform(api_keys=OPERATORS, signup_credits=250)
    wallet = await v1_ok(await client.get("/v1/wallet", headers=ALICE))
    assert wallet["balance"] == 250
    await client.app[ACCOUNTS].ensure_operators(["alice", "bob"])  # as the next start-up does
    statement = await v1_ok(await client.get("/v1/transactions", headers=ALICE))
    assert [(t["type"], t["amount"]) for t in statement["items"]] == [("grant", 250)]
    agent = await v1_ok(await client.get("/v1/agents/bob", headers=ALICE))
    assert agent["kind"] == "operator"
