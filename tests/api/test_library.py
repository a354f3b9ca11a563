"""``/api/v1/prompts`` and ``/api/v1/personalizations``: CRUD, isolation between users, validation, cap."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from runtime.features.library import MAX_ITEMS
from tests.api.conftest import ALICE, BOB, ClientMaker, failure, ok

pytestmark = pytest.mark.both_engines  # every route here reads or writes the store

Client = TestClient[Any, Any]


# (path, key of one item, key of the list)
RESOURCES = [
    ("/api/v1/prompts", "prompt", "prompts"),
    ("/api/v1/personalizations", "personalization", "personalizations"),
]
resources = pytest.mark.parametrize(("path", "one", "many"), RESOURCES, ids=["prompts", "personalizations"])


@resources
async def test_create_get_and_list_round_trip(client: Client, path: str, one: str, many: str) -> None:
    created = await ok(await client.post(path, json={"name": "reviewer", "content": "Review carefully."}))

    item = created[one]
    assert set(created) == {"success", one}
    assert set(item) == {"name", "content", "created_at", "updated_at"}
    assert (item["name"], item["content"]) == ("reviewer", "Review carefully.")
    assert item["created_at"] == item["updated_at"]
    assert await ok(await client.get(f"{path}/reviewer")) == {"success": True, one: item}
    assert await ok(await client.get(path)) == {"success": True, many: [item]}


@resources
async def test_second_post_replaces_the_content(client: Client, path: str, one: str, many: str) -> None:
    first = (await ok(await client.post(path, json={"name": "style", "content": "v1"})))[one]

    second = (await ok(await client.post(path, json={"name": "style", "content": "v2"})))[one]

    assert second["content"] == "v2"
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] >= first["updated_at"]
    listed = (await ok(await client.get(path)))[many]
    assert [(i["name"], i["content"]) for i in listed] == [("style", "v2")]


@resources
async def test_unknown_name_is_404(client: Client, path: str, one: str, many: str) -> None:
    error = await failure(await client.get(f"{path}/missing"), 404)

    assert error == f"{one} 'missing' not found"


@resources
async def test_users_never_see_each_others_items(api: Client, path: str, one: str, many: str) -> None:
    await ok(await api.post(path, json={"name": "mine", "content": "alice's"}, headers=ALICE))

    assert await ok(await api.get(path, headers=BOB)) == {"success": True, many: []}
    await failure(await api.get(f"{path}/mine", headers=BOB), 404)

    bobs = await ok(await api.post(path, json={"name": "mine", "content": "bob's"}, headers=BOB))
    assert bobs[one]["content"] == "bob's"
    assert (await ok(await api.get(f"{path}/mine", headers=ALICE)))[one]["content"] == "alice's"
    assert (await ok(await api.get(f"{path}/mine", headers=BOB)))[one]["content"] == "bob's"
    alice_list = (await ok(await api.get(path, headers=ALICE)))[many]
    assert [i["content"] for i in alice_list] == ["alice's"]


@resources
async def test_every_route_needs_a_token(api: Client, path: str, one: str, many: str) -> None:
    await failure(await api.get(path), 401)
    await failure(await api.get(f"{path}/x"), 401)
    await failure(await api.post(path, json={"name": "x", "content": "y"}), 401)

    assert await ok(await api.get(path, headers=ALICE)) == {"success": True, many: []}


BAD_BODIES = [
    ({"name": "has space", "content": "x"}, "name"),
    ({"name": "", "content": "x"}, "name"),
    ({"name": "../etc", "content": "x"}, "name"),
    ({"name": ".hidden", "content": "x"}, "name"),
    ({"name": "n" * 65, "content": "x"}, "name"),
    ({"name": "ok", "content": ""}, "content"),
    ({"name": "ok", "content": "c" * 20_001}, "content"),
    ({"name": "ok"}, "content"),
    ({"content": "x"}, "name"),
    ({"name": "ok", "content": "x", "extra": 1}, "extra"),
    ({"name": 5, "content": "x"}, "name"),
    ({"name": "ok", "content": ["x"]}, "content"),
    ({"name": "ok", "content": 1}, "content"),
]


@resources
@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
async def test_invalid_bodies_are_400_naming_the_field(
    client: Client, path: str, one: str, many: str, body: dict[str, Any], field: str
) -> None:
    error = await failure(await client.post(path, json=body), 400)

    assert field in error
    assert await ok(await client.get(path)) == {"success": True, many: []}


@resources
@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"not json", "not valid JSON"), (b"[1, 2]", "must be a JSON object"), (b"", "empty")],
)
async def test_bodies_that_are_not_a_json_object_are_400(
    client: Client, path: str, one: str, many: str, raw: bytes, reason: str
) -> None:
    response = await client.post(path, data=raw, headers={"Content-Type": "application/json"})

    assert reason in await failure(response, 400)


async def test_longest_valid_name_and_content_are_accepted(client: Client) -> None:
    name, content = "a" + "b._-9" * 12 + "xyz", "c" * 20_000
    assert len(name) == 64

    created = await ok(await client.post("/api/v1/prompts", json={"name": name, "content": content}))

    assert created["prompt"]["content"] == content
    assert (await ok(await client.get(f"/api/v1/prompts/{name}")))["prompt"]["name"] == name


async def test_cap_refuses_a_new_name_with_409(make_client: ClientMaker) -> None:
    client = await make_client(rate_limit_per_minute=0)  # 200+ requests in a burst: over the default
    for i in range(MAX_ITEMS):
        await ok(await client.post("/api/v1/prompts", json={"name": f"p{i}", "content": "x"}))

    error = await failure(await client.post("/api/v1/prompts", json={"name": "extra", "content": "x"}), 409)

    assert f"limit reached: {MAX_ITEMS}" in error
    replaced = await ok(await client.post("/api/v1/prompts", json={"name": "p7", "content": "new"}))
    assert replaced["prompt"]["content"] == "new"
    assert len((await ok(await client.get("/api/v1/prompts")))["prompts"]) == MAX_ITEMS
    await ok(await client.post("/api/v1/personalizations", json={"name": "extra", "content": "x"}))


async def test_routes_are_in_the_openapi_document(client: Client) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()

    paths = document["paths"]
    for path, _, _ in RESOURCES:
        assert set(paths[path]) == {"get", "post"}
        assert set(paths[f"{path}/{{name}}"]) == {"get"}
    assert "409" in paths["/api/v1/prompts"]["post"]["responses"]
    schema = document["components"]["schemas"]["LibraryItemWrite"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["content"]["maxLength"] == 20_000
