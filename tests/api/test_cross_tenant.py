"""Another user's ids on every route: none reaches, reveals or changes what belongs to someone else.

The routes come from the app's router, so a route added tomorrow is called here the day it is
added; a path parameter this module cannot fill fails the test until someone maps it in
``PATH_IDS``. Ids also travel in bodies (a message's ``conversation_id``, an A2A task id): those
are listed in ``test_another_users_ids_in_bodies_are_not_found``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from aiohttp.web import AbstractRoute

from tests.api.conftest import ALICE, BOB
from tests.fakes import Reply, ScriptedModelServer

pytestmark = [pytest.mark.docker, pytest.mark.both_engines]  # tenants apart on either engine

Client = TestClient[Any, Any]


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


# Every path parameter of the router, and the attribute of AliceIds that fills it.
PATH_IDS = {
    "workspace_id": "workspace_id",
    "conversation_id": "conversation_id",
    "task_id": "task_id",
    "capability_id": "capability_id",
    "name": "name",
}

# A route that reads a query or a body gets a valid one, so its answer is about the ids, not a 400.
QUERIES = {"/files/download": "file"}


def body_of(method: str, path: str, ids: AliceIds) -> dict[str, Any]:
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


def fill(route: AbstractRoute, ids: AliceIds) -> str:
    assert route.resource is not None
    path = route.resource.canonical
    parameters = path_parameters(route)
    for parameter in parameters:
        value = getattr(ids, PATH_IDS[parameter])
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
    return AliceIds(
        conversation_id=conversation["conversation_id"],
        ws_conversation_id=in_ws["conversation_id"],
        task_id=accepted["task_id"],
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
        f"{ws}/files",
        f"/api/v1/prompts/{ids.name}",
        f"/api/v1/personalizations/{ids.name}",
        f"/api/v1/capabilities/{ids.capability_id}",
    ]
    state: list[Any] = []
    for path in reads:
        response = await api.get(path, headers=ALICE)
        assert response.status == 200, f"{path}: {await response.text()}"
        body = await response.json()
        if isinstance(body, dict):
            body.pop("timestamp", None)  # the capability envelope's clock
        state.append(body)
    download = await api.get(f"{ws}/files/download", params={"path": ids.file}, headers=ALICE)
    state.append(await download.read())
    return state


def id_routes(api: Client) -> list[AbstractRoute]:
    return [route for route in api.app.router.routes() if path_parameters(route)]


async def test_every_route_with_ids_is_not_found_for_another_user(
    api: Client, model_server: ScriptedModelServer
) -> None:
    routes = id_routes(api)
    unmapped = {p for route in routes for p in path_parameters(route) if p not in PATH_IDS}
    assert not unmapped, f"map these path parameters in PATH_IDS to an id alice owns: {unmapped}"
    ids = await make_alice(api, model_server)
    before = await alice_state(api, ids)

    answers: dict[str, int] = {}
    for route in routes:
        path = fill(route, ids)
        response = await api.request(route.method, path, headers=BOB, **body_of(route.method, path, ids))
        answers[f"{route.method} {path}"] = response.status
        await response.read()

    assert {call: status for call, status in answers.items() if status != 404} == {}
    assert await alice_state(api, ids) == before
    assert model_server.requests[1:] == []  # only alice's own message reached the model


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

    message = await api.post(
        "/api/v1/messages", json={"message": "x", "conversation_id": ids.conversation_id}, headers=BOB
    )
    invoke = await api.post(
        "/api/v1/capabilities/general/invoke",
        json={"message": "x", "conversation_id": ids.conversation_id},
        headers=BOB,
    )
    a2a: dict[str, Any] = {}
    for method in ("GetTask", "CancelTask"):
        rpc = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"id": ids.task_id}}
        a2a[method] = (await (await api.post("/a2a", json=rpc, headers=BOB)).json())["error"]["code"]

    assert (message.status, invoke.status) == (404, 404)
    assert a2a == {"GetTask": -32001, "CancelTask": -32001}  # TaskNotFoundError
    assert await alice_state(api, ids) == before
    assert model_server.requests[1:] == []
