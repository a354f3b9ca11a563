"""Another user's ids on every route: none reaches, reveals or changes what belongs to someone else.

The routes come from the app's router, so a route added tomorrow is called here the day it is
added; a path parameter this module cannot fill fails the test until someone maps it in
``PATH_IDS``. Every route is private (another user's ids are a 404) except the ``/v1``
marketplace, public among nodes by design: each of its routes with ids says in ``MARKETPLACE``
what another node gets there, and a ``/v1`` route missing from it fails the test. Ids also
travel in bodies (a message's ``conversation_id``, an A2A task id): those are listed in
``test_another_users_ids_in_bodies_are_not_found``.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import astuple, dataclass
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from aiohttp.web import AbstractRoute

from tests.api.conftest import ALICE, BOB, TWO_USER_KEYS, ClientMaker
from tests.fakes import Reply, ScriptedModelServer

pytestmark = [pytest.mark.docker, pytest.mark.both_engines]  # tenants apart on either engine

Client = TestClient[Any, Any]

CAROL = {"Authorization": "Bearer tok-c"}  # sells alice a capability: an order bob has no part in


@pytest.fixture
async def api(make_platform: ClientMaker) -> Client:
    """alice and bob, and carol; the ledger balanced at the end."""
    return await make_platform(api_keys=f"{TWO_USER_KEYS},carol:tok-c")


@dataclass(frozen=True)
class AliceIds:
    """What alice owns, each made private to her (bob has nothing of the same name)."""

    workspace_id: str = "alice-ws"
    name: str = "alice-private"  # a prompt and a personalization both
    capability_id: str = "alice-cap"
    conversation_id: str = ""  # in her default workspace, with a finished task
    ws_conversation_id: str = ""  # in workspace_id
    task_id: str = ""
    file: str = "user_upload/secret.txt"
    transaction_id: str = ""  # her order of carol's public priced capability
    agent_id: str = "alice"  # an operator user's node id is the user name
    platform_task_id: str = ""  # a marketplace task she published, still open
    taken_task_id: str = ""  # another one of hers, which carol accepted


# Every path parameter of the router, and the attribute of AliceIds that fills it.
PATH_IDS = {
    "workspace_id": "workspace_id",
    "conversation_id": "conversation_id",
    "task_id": "task_id",
    "capability_id": "capability_id",
    "name": "name",
    "transaction_id": "transaction_id",
    "agent_id": "agent_id",
}

# Under /v1, ``task_id`` names a marketplace task, not a run of the task API.
V1_PATH_IDS = {"task_id": "platform_task_id"}
# Completing an open task is a 409 for anyone (accept it first): the task whose completion only its
# acceptor may make is one carol took.
ROUTE_IDS = {("PUT", "/v1/tasks/{task_id}/complete"): {"task_id": "taken_task_id"}}

# What bob gets on alice's ids in the /v1 marketplace (docs/platform.md), which every node may read;
# its changes are allowed by role. Every /v1 route with ids is listed; any other route answers 404.
MARKETPLACE: dict[tuple[str, str], int] = {
    ("GET", "/v1/agents/{agent_id}"): 200,
    ("PUT", "/v1/agents/{agent_id}"): 403,  # a node updates its own entry only
    ("GET", "/v1/trust/{agent_id}"): 200,
    ("GET", "/v1/tasks/{task_id}"): 200,
    ("PUT", "/v1/tasks/{task_id}/complete"): 403,  # by its acceptor only: carol, not bob
    ("PUT", "/v1/tasks/{task_id}/cancel"): 403,  # by its publisher only
    # Any node may take an open task: called after the checks that bob changed nothing of alice's.
    ("PUT", "/v1/tasks/{task_id}/accept"): 200,
}

# A route that reads a query or a body gets a valid one, so its answer is about the ids, not a 400.
QUERIES = {"/files/download": "file"}


def body_of(method: str, path: str, ids: AliceIds) -> dict[str, Any]:
    if method == "PUT":
        if path.startswith("/v1/agents/"):
            return {"json": {"nickname": "bob was here", "capabilities": ["bobbing"]}}
        if path.endswith("/complete"):
            return {"json": {"deliverables": {"report": "bob's"}}}
        return {}
    if method != "POST":
        return {}
    if path.endswith("/files/upload"):
        form = FormData()
        form.add_field("file", io.BytesIO(b"bob was here"), filename="secret.txt")
        return {"data": form}
    if path.endswith("/messages"):
        return {"json": {"message": "read alice's files", "conversation_id": ids.conversation_id}}
    if path.endswith("/invoke"):
        return {"json": {"message": "run as alice's capability"}}
    return {}


def path_parameters(route: AbstractRoute) -> list[str]:
    return re.findall(r"\{(\w+)", route.resource.canonical if route.resource else "")


def pattern(route: AbstractRoute) -> str:
    assert route.resource is not None
    return route.resource.canonical


def fill(route: AbstractRoute, ids: AliceIds) -> str:
    path = pattern(route)
    names = (V1_PATH_IDS if path.startswith("/v1/") else {}) | ROUTE_IDS.get((route.method, path), {})
    parameters = path_parameters(route)
    for parameter in parameters:
        value = getattr(ids, names.get(parameter, PATH_IDS[parameter]))
        if parameter == "conversation_id" and "workspace_id" in parameters:
            value = ids.ws_conversation_id
        path = re.sub(r"\{" + parameter + r"(:[^}]*)?\}", value, path)
    for suffix, attribute in QUERIES.items():
        if path.endswith(suffix):
            path += f"?path={getattr(ids, attribute)}"
    return path


async def make_alice(api: Client, model_server: ScriptedModelServer) -> AliceIds:
    ids = AliceIds()
    ws = f"/api/v1/workspaces/{ids.workspace_id}"

    async def made(response: Any) -> Any:
        assert response.status in (200, 201, 202), await response.text()
        return await response.json()

    await made(await api.post("/api/v1/workspaces", json={"workspace_id": ids.workspace_id}, headers=ALICE))
    for kind in ("prompts", "personalizations"):
        await made(await api.post(f"/api/v1/{kind}", json={"name": ids.name, "content": "x"}, headers=ALICE))
    await made(
        await api.post(
            "/api/v1/capabilities", json={"id": ids.capability_id, "name": "Alice's"}, headers=ALICE
        )
    )
    form = FormData()
    form.add_field("file", io.BytesIO(b"alice only"), filename="secret.txt")
    await made(await api.post(f"{ws}/files/upload", data=form, headers=ALICE))
    in_ws = await made(await api.post(f"{ws}/conversations", headers=ALICE))
    conversation = await made(await api.post("/api/v1/conversations", headers=ALICE))
    model_server.add(Reply("alice's answer"))
    accepted = await made(
        await api.post(
            "/api/v1/messages",
            json={"message": "hello", "conversation_id": conversation["conversation_id"]},
            headers=ALICE,
        )
    )
    task = f"/api/v1/tasks/{accepted['task_id']}"
    while (await made(await api.get(f"{task}?wait=2", headers=ALICE)))["data"]["status"] == "running":
        pass
    spec = {"id": "carol-cap", "name": "Carol's", "default_input": "go", "visibility": "public", "price": 25}
    await made(await api.post("/api/v1/capabilities", json=spec, headers=CAROL))
    model_server.add(Reply("carol's answer"))
    order = await made(
        await api.post("/api/v1/transactions", json={"capability_id": "carol-cap"}, headers=ALICE)
    )
    for _ in range(600):  # until the order is settled as its task ends: then nothing of it changes
        found = await made(await api.get(f"/api/v1/transactions/{order['data']['id']}", headers=ALICE))
        if found["data"]["status"] not in ("pending", "running"):
            break
        await asyncio.sleep(0.05)
    assert found["data"]["status"] == "completed", found
    published, taken = [
        (await made(await api.post("/v1/tasks", json=task, headers=ALICE)))["data"]["task_id"]
        for task in ({"title": "alice's", "description": "x", "budget": 50},) * 2
    ]
    await made(await api.put(f"/v1/tasks/{taken}/accept", headers=CAROL))
    return AliceIds(
        conversation_id=conversation["conversation_id"],
        ws_conversation_id=in_ws["conversation_id"],
        task_id=accepted["task_id"],
        transaction_id=order["data"]["id"],
        platform_task_id=published,
        taken_task_id=taken,
    )


async def alice_state(api: Client, ids: AliceIds) -> list[Any]:
    """Everything bob might have changed, as alice reads it."""
    ws = f"/api/v1/workspaces/{ids.workspace_id}"
    reads = [
        "/api/v1/workspaces",
        "/api/v1/conversations",
        f"/api/v1/conversations/{ids.conversation_id}",
        f"{ws}/conversations",
        f"{ws}/conversations/{ids.ws_conversation_id}",
        f"/api/v1/tasks/{ids.task_id}",
        "/api/v1/tasks",
        f"{ws}/files",
        f"/api/v1/prompts/{ids.name}",
        f"/api/v1/personalizations/{ids.name}",
        f"/api/v1/capabilities/{ids.capability_id}",
        f"/api/v1/transactions/{ids.transaction_id}",
        f"/v1/agents/{ids.agent_id}",
        f"/v1/tasks/{ids.platform_task_id}",  # open, its budget held
        f"/v1/tasks/{ids.taken_task_id}",  # in progress, carol its acceptor
        "/v1/wallet",
    ]
    state: list[Any] = []
    for path in reads:
        response = await api.get(path, headers=ALICE)
        assert response.status == 200, f"{path}: {await response.text()}"
        body = await response.json()
        if isinstance(body, dict):
            body.pop("timestamp", None)  # the capability and /v1 envelopes' clock
        state.append(body)
    download = await api.get(f"{ws}/files/download", params={"path": ids.file}, headers=ALICE)
    state.append(await download.read())
    return state


def id_routes(api: Client) -> list[AbstractRoute]:
    # The console's pages render no user data on the server (their scripts ask the API, covered
    # here): any id gets the same page shell; tests/console checks what another user's id shows.
    return [
        route
        for route in api.app.router.routes()
        if path_parameters(route) and not pattern(route).startswith("/console/")
    ]


def expected(route: AbstractRoute) -> int:
    """What bob gets calling the route on alice's ids."""
    return MARKETPLACE.get((route.method, pattern(route)), 404)


def changes_for_anyone(route: AbstractRoute) -> bool:
    """A change every node may make to alice's object (taking her open task)."""
    return route.method != "GET" and expected(route) < 400


async def bobs_call(api: Client, route: AbstractRoute, ids: AliceIds) -> tuple[str, int]:
    path = fill(route, ids)
    response = await api.request(route.method, path, headers=BOB, **body_of(route.method, path, ids))
    if path.startswith("/v1/"):  # the envelope's code is 0 on success, else the status
        body = await response.json()
        assert body["code"] == (0 if response.status < 400 else response.status), body
    else:
        await response.read()
    return f"{route.method} {pattern(route)} as {path}", response.status


async def test_every_route_with_ids_is_not_found_for_another_user(
    api: Client, model_server: ScriptedModelServer
) -> None:
    routes = id_routes(api)
    unmapped = {p for route in routes for p in path_parameters(route) if p not in PATH_IDS}
    assert not unmapped, f"map these path parameters in PATH_IDS to an id alice owns: {unmapped}"
    marketplace = {(route.method, pattern(route)) for route in routes if pattern(route).startswith("/v1/")}
    assert marketplace <= set(MARKETPLACE), (
        f"say in MARKETPLACE what another node gets on these /v1 routes: {marketplace - set(MARKETPLACE)}"
    )
    ids = await make_alice(api, model_server)
    before = await alice_state(api, ids)
    asked = len(model_server.requests)

    answers = dict([await bobs_call(api, route, ids) for route in routes if not changes_for_anyone(route)])
    assert await alice_state(api, ids) == before
    answers |= dict([await bobs_call(api, route, ids) for route in routes if changes_for_anyone(route)])

    wanted = {f"{route.method} {pattern(route)} as {fill(route, ids)}": expected(route) for route in routes}
    assert {call: (got, wanted[call]) for call, got in answers.items() if got != wanted[call]} == {}
    assert model_server.requests[asked:] == []  # none of bob's calls reached the model
    open_task = await api.get(f"/v1/tasks/{ids.platform_task_id}", headers=ALICE)
    assert (await open_task.json())["data"]["acceptor"] == "bob"  # his accept took it


async def test_the_same_calls_reach_the_owners_objects(
    api: Client, model_server: ScriptedModelServer
) -> None:
    """The control: alice's reads on those routes succeed, so bob's 404s are about ownership."""
    ids = await make_alice(api, model_server)

    for route in id_routes(api):
        if route.method != "GET":
            continue
        path = fill(route, ids)
        response = await api.get(path, headers=ALICE)
        assert response.status == 200, f"{path}: {await response.text()}"
        await response.read()


async def test_another_users_ids_in_bodies_are_not_found(
    api: Client, model_server: ScriptedModelServer
) -> None:
    ids = await make_alice(api, model_server)
    before = await alice_state(api, ids)
    asked = len(model_server.requests)

    message = await api.post(
        "/api/v1/messages", json={"message": "x", "conversation_id": ids.conversation_id}, headers=BOB
    )
    invoke = await api.post(
        "/api/v1/capabilities/general/invoke",
        json={"message": "x", "conversation_id": ids.conversation_id},
        headers=BOB,
    )
    a2a: dict[tuple[str, str], Any] = {}
    for task_id in (ids.task_id, ids.transaction_id):  # an order's id is its task's
        for method in ("GetTask", "CancelTask"):
            rpc = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"id": task_id}}
            answer = await (await api.post("/a2a", json=rpc, headers=BOB)).json()
            a2a[task_id, method] = answer["error"]["code"]

    listed = await api.get("/api/v1/tasks", params={"conversation_id": ids.conversation_id}, headers=BOB)
    assert (await listed.json())["tasks"] == []  # a filter on her conversation finds none of hers
    assert (message.status, invoke.status) == (404, 404)
    assert set(a2a.values()) == {-32001} and len(a2a) == 4  # TaskNotFoundError
    assert await alice_state(api, ids) == before
    assert model_server.requests[asked:] == []


async def test_metrics_name_none_of_another_users_ids(api: Client, model_server: ScriptedModelServer) -> None:
    """/metrics counts every user's work by route template, model, tool and outcome: never an id."""
    ids = await make_alice(api, model_server)
    for route in id_routes(api):  # every route with ids, on alice's ids, counted before the scrape
        if route.method == "GET":
            await (await api.get(fill(route, ids), headers=ALICE)).read()

    text = await (await api.get("/metrics", headers=BOB)).text()

    assert 'route="/api/v1/tasks/{task_id}"' in text
    assert [value for value in astuple(ids) if value and value in text] == []
