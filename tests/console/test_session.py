"""The console's session over plain HTTP: sign-in sets the cookie with its flags, the API accepts
it, unsafe requests need the CSRF token, sign-out clears it, and a key sees only its own tasks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.web.session import COOKIE_NAME, CSRF_HEADER
from tests.api.conftest import ClientMaker
from tests.fakes import Reply, ScriptedModelServer

Client = TestClient[Any, Any]
KEYS = "alice:tok-alice,bob:tok-bob"


@pytest.fixture
async def secured(make_client: ClientMaker) -> Client:
    return await make_client(api_keys=KEYS)


async def sign_in(client: Client, key: str) -> str:
    """Signs ``client``'s cookie jar in with ``key``; returns the page's CSRF token."""
    response = await client.post(
        "/console/signin", data={"api_key": key, "next": "/console"}, allow_redirects=False
    )
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/console"
    page = await client.get("/console")
    assert page.status == 200
    match = re.search(r'<meta name="csrf-token" content="([^"]*)">', await page.text())
    assert match and match.group(1)
    return match.group(1)


async def test_signin_sets_an_httponly_strict_session_cookie(secured: Client) -> None:
    response = await secured.post("/console/signin", data={"api_key": "tok-alice"}, allow_redirects=False)

    assert response.status == 303
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert not cookie["secure"]  # plain http here; https requests get Secure
    assert not cookie["max-age"] and not cookie["expires"]  # a session cookie
    assert "tok-alice" not in cookie.value  # not readable at a glance in logs or screenshots


async def test_signin_behind_https_marks_the_cookie_secure(make_client: ClientMaker) -> None:
    client = await make_client(api_keys=KEYS, public_url="https://agents.example.com")

    response = await client.post("/console/signin", data={"api_key": "tok-alice"}, allow_redirects=False)

    assert response.cookies[COOKIE_NAME]["secure"] is True


async def test_a_wrong_key_is_refused_and_sets_no_cookie(secured: Client) -> None:
    response = await secured.post("/console/signin", data={"api_key": "nope"}, allow_redirects=False)

    assert response.status == 401
    assert COOKIE_NAME not in response.cookies
    assert "not valid" in await response.text()


async def test_a_signin_posted_from_another_site_is_refused(secured: Client) -> None:
    response = await secured.post(
        "/console/signin",
        data={"api_key": "tok-alice"},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
    )

    assert response.status == 403
    assert COOKIE_NAME not in response.cookies


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/api/v1/tasks"])
async def test_signin_only_returns_to_console_pages(secured: Client, target: str) -> None:
    response = await secured.post(
        "/console/signin", data={"api_key": "tok-alice", "next": target}, allow_redirects=False
    )

    assert response.headers["Location"] == "/console"


async def test_pages_without_a_session_redirect_to_signin(secured: Client) -> None:
    response = await secured.get("/console/tasks/abc?x=1", allow_redirects=False)

    assert response.status == 303
    assert response.headers["Location"] == "/console/signin?next=/console/tasks/abc%3Fx%3D1"
    api = await secured.get("/api/v1/tasks")
    assert api.status == 401  # the API keeps its JSON 401


async def test_the_api_accepts_the_cookie_and_unsafe_requests_need_the_csrf_token(
    secured: Client, model_server: ScriptedModelServer
) -> None:
    token = await sign_in(secured, "tok-alice")

    assert (await secured.get("/api/v1/workspaces")).status == 200
    refused = await secured.post("/api/v1/workspaces", json={"workspace_id": "ws1"})
    assert refused.status == 403
    assert CSRF_HEADER in (await refused.json())["error"]
    wrong = await secured.post("/api/v1/workspaces", json={"workspace_id": "ws1"}, headers={CSRF_HEADER: "x"})
    assert wrong.status == 403
    created = await secured.post(
        "/api/v1/workspaces", json={"workspace_id": "ws1"}, headers={CSRF_HEADER: token}
    )
    assert created.status == 200, await created.text()
    listed = await (await secured.get("/api/v1/workspaces")).json()
    assert "ws1" in {w["workspace_id"] for w in listed["workspaces"]}


async def test_a_header_key_needs_no_csrf_token_even_with_a_cookie(secured: Client) -> None:
    await sign_in(secured, "tok-alice")

    response = await secured.post(
        "/api/v1/workspaces", json={"workspace_id": "ws2"}, headers={"Authorization": "Bearer tok-bob"}
    )

    assert response.status == 200  # bob's header, not alice's cookie
    bob = await (await secured.get("/api/v1/workspaces", headers={"Authorization": "Bearer tok-bob"})).json()
    assert "ws2" in {w["workspace_id"] for w in bob["workspaces"]}


async def test_signout_needs_the_token_and_clears_the_cookie(secured: Client) -> None:
    token = await sign_in(secured, "tok-alice")

    refused = await secured.post("/console/signout", data={"csrf_token": "wrong"}, allow_redirects=False)
    assert refused.status == 403
    response = await secured.post("/console/signout", data={"csrf_token": token}, allow_redirects=False)

    assert response.status == 303
    assert response.headers["Location"] == "/console/signin"
    assert response.cookies[COOKIE_NAME].value == ""
    assert (await secured.get("/api/v1/workspaces")).status == 401
    assert (await secured.get("/console", allow_redirects=False)).status == 303


async def test_a_key_sees_only_its_own_tasks(secured: Client, model_server: ScriptedModelServer) -> None:
    model_server.add(Reply("for alice"))
    alice = {"Authorization": "Bearer tok-alice"}
    started = await secured.post("/api/v1/messages", json={"message": "hi"}, headers=alice)
    assert started.status == 202, await started.text()
    task_id = (await started.json())["task_id"]

    await sign_in(secured, "tok-bob")
    listed = await (await secured.get("/api/v1/tasks")).json()
    assert listed["tasks"] == []
    assert (await secured.get(f"/api/v1/tasks/{task_id}")).status == 404
    assert (await secured.get(f"/api/v1/tasks/{task_id}/events")).status == 404

    await sign_in(secured, "tok-alice")
    mine = await (await secured.get("/api/v1/tasks")).json()
    assert [t["task_id"] for t in mine["tasks"]] == [task_id]


async def test_anonymous_loopback_mode_needs_no_signin(client: Client) -> None:
    page = await client.get("/console", allow_redirects=False)

    assert page.status == 200
    assert "Anonymous" in await page.text()
    created = await client.post("/api/v1/workspaces", json={"workspace_id": "anon"})
    assert created.status == 200


async def test_pages_carry_a_strict_content_security_policy(client: Client) -> None:
    page = await client.get("/console/chat")

    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"


async def test_static_files_are_served_with_their_hash(client: Client) -> None:
    page = await (await client.get("/console")).text()
    url = re.search(r'src="(/console/static/console\.js\?v=[0-9a-f]+)"', page)
    assert url
    response = await client.get(url.group(1))

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert "immutable" in response.headers["Cache-Control"]
    assert (await client.get("/console/static/nope.js")).status == 404


async def test_static_files_are_not_rate_limited(make_client: ClientMaker) -> None:
    client = await make_client(api_keys=KEYS, public_rate_limit_per_minute=1)
    page = await (await client.get("/console/signin")).text()
    url = re.search(r'href="(/console/static/console\.css\?v=[0-9a-f]+)"', page)
    assert url

    statuses = [(await client.get(url.group(1))).status for _ in range(5)]

    assert statuses == [200] * 5
    assert (await client.get("/console/signin")).status == 429  # the page itself is: one a minute


@pytest.mark.parametrize("value", ["garbage", "nonce.!!!", ".", "n." + "A" * 2000, "n.dG9rLWV2ZQ"])
async def test_a_malformed_or_unknown_session_cookie_is_no_session(secured: Client, value: str) -> None:
    secured.session.cookie_jar.update_cookies({COOKIE_NAME: value})

    assert (await secured.get("/api/v1/workspaces")).status == 401
    page = await secured.get("/console", allow_redirects=False)
    assert page.status == 303
    assert page.headers["Location"].startswith("/console/signin")
