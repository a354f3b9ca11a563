"""The files API: upload, list, download; workspace scoping, isolation, confinement, the size limit,
and the workspace shared with the agent's sandbox."""

from __future__ import annotations

import io
import os
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import docker
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from yarl import URL

from api.web.keys import WORKSPACES
from sandbox.base import SandboxLimits, SandboxRequest
from sandbox.docker_engine.backend import DockerSandboxFactory
from tests.api.conftest import ALICE, BOB, ClientMaker, failure, ok

pytestmark = pytest.mark.both_engines  # every route here reads or writes the store

Client = TestClient[Any, Any]

V1 = "/api/v1"
WS1 = "/api/v1/workspaces/ws1"


async def files_dir(client: Client, user: str, workspace_id: str = "default") -> Path:
    return await client.server.app[WORKSPACES].files_dir(user, workspace_id)


def form(name: str, data: bytes, path: str | None = None, path_first: bool = True) -> FormData:
    # quote_fields=False: the file name goes as it is, as browsers and curl send it (aiohttp would
    # percent-encode it, which a server reads as part of the name).
    body = FormData(quote_fields=False)
    if path is not None and path_first:
        body.add_field("path", path)
    body.add_field("file", io.BytesIO(data), filename=name, content_type="application/octet-stream")
    if path is not None and not path_first:
        body.add_field("path", path)
    return body


async def upload(
    client: Client, name: str, data: bytes, prefix: str = V1, headers: dict[str, str] = ALICE, **extra: Any
) -> Any:
    return await client.post(f"{prefix}/files/upload", data=form(name, data, **extra), headers=headers)


async def listing(
    client: Client, prefix: str = V1, headers: dict[str, str] = ALICE, **query: str
) -> list[Any]:
    body = await ok(await client.get(f"{prefix}/files", params=query, headers=headers))
    assert body["truncated"] is False
    return [(entry["path"], entry["type"], entry["size"]) for entry in body["files"]]


async def download(client: Client, path: str, prefix: str = V1, headers: dict[str, str] = ALICE) -> bytes:
    response = await client.get(f"{prefix}/files/download", params={"path": path}, headers=headers)
    assert response.status == 200, await response.text()
    data: bytes = await response.read()
    return data


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under ``root`` with its content (files) or link target (symlinks).

    The DB is left out, and so are the workspaces' filesystem images: their contents are compared
    through their mounts, and their bytes change with the filesystem's own bookkeeping.
    """
    found: dict[str, bytes | str] = {}
    for path in root.rglob("*"):
        if path.name.startswith("agent-worker.sqlite3") or path.name.endswith(".ext4"):
            continue
        if path.is_symlink():
            found[str(path)] = os.readlink(path)
        elif path.is_file():
            found[str(path)] = path.read_bytes()
        else:
            found[str(path)] = "dir"
    return found


async def test_upload_list_download_round_trip(api: Client) -> None:
    data = b"col1,col2\n1,2\n" * 100

    uploaded = await ok(await upload(api, "data.csv", data))

    assert uploaded == {"success": True, "path": "user_upload/data.csv", "size": len(data)}
    assert ((await files_dir(api, "alice")) / "user_upload" / "data.csv").read_bytes() == data
    body = await ok(await api.get("/api/v1/files", headers=ALICE))
    assert body["truncated"] is False
    assert [entry["path"] for entry in body["files"]] == ["user_upload", "user_upload/data.csv"]
    directory, file = body["files"]
    assert (directory["type"], directory["size"]) == ("dir", 0)
    assert (file["type"], file["size"]) == ("file", len(data))
    assert isinstance(file["modified"], float) and file["modified"] > 1.6e9
    response = await api.get("/api/v1/files/download", params={"path": "user_upload/data.csv"}, headers=ALICE)
    assert response.status == 200
    assert await response.read() == data
    assert response.headers["Content-Disposition"].startswith('attachment; filename="data.csv"')
    assert response.headers["Content-Type"] == "text/csv"
    ranged = await api.get(
        "/api/v1/files/download",
        params={"path": "user_upload/data.csv"},
        headers={**ALICE, "Range": "bytes=4-7"},
    )
    assert ranged.status == 206
    assert await ranged.read() == data[4:8]


async def test_a_file_of_many_chunks_arrives_intact(api: Client) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)

    uploaded = await ok(await upload(api, "blob.bin", data))

    assert uploaded["size"] == len(data)
    assert await download(api, "user_upload/blob.bin") == data


@pytest.mark.parametrize("mtime_from_now", [0.5, 3600.5], ids=["written-this-second", "mtime-in-the-future"])
async def test_last_modified_is_never_later_than_date(api: Client, mtime_from_now: float) -> None:
    await ok(await upload(api, "fresh.txt", b"new"))
    path = (await files_dir(api, "alice")) / "user_upload" / "fresh.txt"
    os.utime(path, (path.stat().st_atime, int(time.time()) + mtime_from_now))

    response = await api.get(
        "/api/v1/files/download", params={"path": "user_upload/fresh.txt"}, headers=ALICE
    )

    assert response.status == 200
    last_modified = parsedate_to_datetime(response.headers["Last-Modified"])
    assert last_modified <= parsedate_to_datetime(response.headers["Date"])


async def test_an_older_file_keeps_its_last_modified_and_revalidates(api: Client) -> None:
    await ok(await upload(api, "old.txt", b"old"))
    path = (await files_dir(api, "alice")) / "user_upload" / "old.txt"
    os.utime(path, (1_700_000_000, 1_700_000_000.25))
    url = "/api/v1/files/download?path=user_upload/old.txt"

    response = await api.get(url, headers=ALICE)
    again = await api.get(url, headers={**ALICE, "If-Modified-Since": response.headers["Last-Modified"]})

    # rounded up, as aiohttp does, so a client's If-Modified-Since of it matches the file
    assert response.headers["Last-Modified"] == "Tue, 14 Nov 2023 22:13:21 GMT"
    assert again.status == 304


async def test_upload_into_a_sub_directory_in_either_field_order(api: Client) -> None:
    first = await ok(await upload(api, "a.txt", b"A", path="reports/2024"))
    second = await ok(await upload(api, "b.txt", b"BB", path="reports", path_first=False))

    assert first["path"] == "user_upload/reports/2024/a.txt"
    assert second["path"] == "user_upload/reports/b.txt"
    assert await listing(api, path="user_upload/reports") == [
        ("user_upload/reports/2024", "dir", 0),
        ("user_upload/reports/2024/a.txt", "file", 1),
        ("user_upload/reports/b.txt", "file", 2),
    ]
    assert await download(api, "user_upload/reports/2024/a.txt") == b"A"


async def test_same_name_replaces_the_file_and_leaves_no_temporary(api: Client) -> None:
    await ok(await upload(api, "notes.md", b"old version"))

    await ok(await upload(api, "notes.md", b"new"))

    assert await download(api, "user_upload/notes.md") == b"new"
    assert await listing(api) == [("user_upload", "dir", 0), ("user_upload/notes.md", "file", 3)]


async def test_upload_onto_a_directory_is_a_conflict(api: Client) -> None:
    await ok(await upload(api, "inner.txt", b"i", path="taken"))

    response = await upload(api, "taken", b"file")

    assert "user_upload/taken is a directory" in await failure(response, 409)
    assert await download(api, "user_upload/taken/inner.txt") == b"i"


async def test_listing_is_in_path_order_and_shows_symlinks_without_following_them(api: Client) -> None:
    root = await files_dir(api, "alice")
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "deep.txt").write_text("d")
    (root / "a.txt").write_text("aa")
    (root / "z.txt").write_text("zzz")
    (root / "etc").symlink_to("/etc")

    assert await listing(api) == [
        ("a", "dir", 0),
        ("a/b", "dir", 0),
        ("a/b/deep.txt", "file", 1),
        ("a.txt", "file", 2),
        ("etc", "symlink", 0),
        ("z.txt", "file", 3),
    ]


async def test_workspace_scoped_forms_address_that_workspace_only(api: Client) -> None:
    await ok(await api.post("/api/v1/workspaces", json={"workspace_id": "ws1"}, headers=ALICE))

    uploaded = await ok(await upload(api, "in-ws1.txt", b"ws1 data", prefix=WS1))

    assert uploaded["path"] == "user_upload/in-ws1.txt"
    assert ((await files_dir(api, "alice", "ws1")) / "user_upload" / "in-ws1.txt").read_bytes() == b"ws1 data"
    assert await listing(api, prefix=WS1) == [
        ("user_upload", "dir", 0),
        ("user_upload/in-ws1.txt", "file", 8),
    ]
    assert await download(api, "user_upload/in-ws1.txt", prefix=WS1) == b"ws1 data"
    assert await listing(api) == []  # the default workspace is another directory
    await failure(
        await api.get("/api/v1/files/download", params={"path": "user_upload/in-ws1.txt"}, headers=ALICE),
        404,
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/files"), ("GET", "/files/download?path=x"), ("POST", "/files/upload")],
    ids=["list", "download", "upload"],
)
async def test_unknown_workspace_is_404(api: Client, method: str, path: str) -> None:
    data = form("x.txt", b"x") if method == "POST" else None

    response = await api.request(method, f"/api/v1/workspaces/nope{path}", data=data, headers=ALICE)

    assert "workspace nope not found" in await failure(response, 404)


async def test_users_never_reach_each_others_files(api: Client, tmp_path: Path) -> None:
    await ok(await api.post("/api/v1/workspaces", json={"workspace_id": "ws1"}, headers=ALICE))
    await ok(await upload(api, "secret.txt", b"alice only", prefix=WS1))
    await ok(await upload(api, "mine.txt", b"alice default"))
    before = snapshot(await files_dir(api, "alice", "ws1"))

    await failure(await api.get(f"{WS1}/files", headers=BOB), 404)
    await failure(
        await api.get(f"{WS1}/files/download", params={"path": "user_upload/secret.txt"}, headers=BOB),
        404,
    )
    await failure(await upload(api, "secret.txt", b"bob was here", prefix=WS1, headers=BOB), 404)
    assert await listing(api, headers=BOB) == []
    await ok(await upload(api, "mine.txt", b"bob default", headers=BOB))

    assert snapshot(await files_dir(api, "alice", "ws1")) == before
    assert await download(api, "user_upload/mine.txt", headers=BOB) == b"bob default"
    assert await download(api, "user_upload/mine.txt") == b"alice default"
    assert (await files_dir(api, "alice")) != (await files_dir(api, "bob"))


TRAVERSALS = ["../x", "/etc/passwd", "user_upload/../../x", "a/\x00b", "..", "../bob"]


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_traversal_in_list_and_download_is_refused(api: Client, path: str) -> None:
    await ok(await upload(api, "x", b"inside"))

    listed = await api.get("/api/v1/files", params={"path": path}, headers=ALICE)
    fetched = await api.get("/api/v1/files/download", params={"path": path}, headers=ALICE)

    assert await failure(listed, 400)
    assert await failure(fetched, 400)


@pytest.mark.parametrize(
    "query",
    ["path=..%2F..%2F..%2Fagent-worker.sqlite3", "path=user_upload%2F..%2F..%2Fx", "path=%2Fetc%2Fpasswd"],
)
async def test_url_encoded_traversal_is_refused(api: Client, query: str) -> None:
    for route in ("files", "files/download"):
        url = URL(f"/api/v1/{route}?{query}", encoded=True)

        response = await api.get(url, headers=ALICE)

        assert await failure(response, 400)


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("../escape.txt", None),
        ("..", None),
        ("", None),
        ("ok.txt", "../../escape"),
        ("ok.txt", "/tmp/escape"),
        ("ok.txt", "a/../../../escape"),
    ],
    ids=[
        "name-dotdot-slash",
        "name-dotdot",
        "name-empty",
        "path-dotdot",
        "path-absolute",
        "path-nested-dotdot",
    ],
)
async def test_traversal_in_upload_is_refused_and_writes_nothing(
    api: Client, tmp_path: Path, name: str, path: str | None
) -> None:
    await ok(await upload(api, "first.txt", b"1"))  # user_upload/ exists before the snapshot
    before = snapshot(tmp_path)

    response = await upload(api, name, b"payload", path=path)

    assert await failure(response, 400)
    assert snapshot(tmp_path) == before


async def test_symlinks_out_of_the_workspace_are_refused(api: Client, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    await ok(await upload(api, "bob-secret.txt", b"bob's", headers=BOB))
    root = await files_dir(api, "alice")
    (root / "user_upload").mkdir()
    (root / "user_upload" / "evil").symlink_to(outside)
    (root / "etc").symlink_to("/etc")
    (root / "bob").symlink_to(await files_dir(api, "bob"))
    (root / "secret-link.txt").symlink_to(outside / "secret.txt")
    before = snapshot(tmp_path)

    refusals = [
        await api.get("/api/v1/files", params={"path": "user_upload/evil"}, headers=ALICE),
        await api.get("/api/v1/files", params={"path": "bob"}, headers=ALICE),
        await api.get("/api/v1/files/download", params={"path": "etc/passwd"}, headers=ALICE),
        await api.get("/api/v1/files/download", params={"path": "secret-link.txt"}, headers=ALICE),
        await api.get(
            "/api/v1/files/download", params={"path": "bob/user_upload/bob-secret.txt"}, headers=ALICE
        ),
        await upload(api, "planted.txt", b"x", path="evil"),
    ]

    for response in refusals:
        assert "is a symlink" in await failure(response, 400)
    assert snapshot(tmp_path) == before
    assert not (outside / "planted.txt").exists()


async def test_a_symlinked_upload_directory_is_refused(api: Client, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    ((await files_dir(api, "alice")) / "user_upload").symlink_to(outside)

    response = await upload(api, "planted.txt", b"x")

    assert "user_upload is a symlink" in await failure(response, 400)
    assert list(outside.iterdir()) == []


async def test_upload_over_the_limit_is_413_and_keeps_nothing(make_client: ClientMaker) -> None:
    client = await make_client(api_keys="alice:tok-a", max_upload_bytes=1024)

    exact = await upload(client, "exact.bin", b"e" * 1024)
    over = await upload(client, "big.bin", b"b" * 4096)

    assert (await ok(exact))["size"] == 1024
    assert "1024 bytes" in await failure(over, 413)
    upload_dir = (await files_dir(client, "alice")) / "user_upload"
    assert sorted(p.name for p in upload_dir.iterdir()) == ["exact.bin"]


async def test_download_refuses_directories_and_missing_files(api: Client) -> None:
    await ok(await upload(api, "a.txt", b"a", path="sub"))

    async def fetch(path: str) -> Any:
        return await api.get("/api/v1/files/download", params={"path": path}, headers=ALICE)

    assert "is a directory" in await failure(await fetch("user_upload/sub"), 400)
    assert "not found" in await failure(await fetch("user_upload/missing.txt"), 404)
    assert "not found" in await failure(await fetch("nowhere/a.txt"), 404)
    await failure(await api.get("/api/v1/files/download", headers=ALICE), 400)  # no path
    listed = await api.get("/api/v1/files", params={"path": "user_upload/sub/a.txt"}, headers=ALICE)
    assert "is not a directory" in await failure(listed, 400)
    missing = await api.get("/api/v1/files", params={"path": "user_upload/missing"}, headers=ALICE)
    assert "not found" in await failure(missing, 404)


async def test_malformed_uploads_are_400_and_leave_nothing(api: Client) -> None:
    no_file = FormData(default_to_multipart=True)
    no_file.add_field("path", "sub")
    extra = form("a.txt", b"a")
    extra.add_field("comment", "hi")

    responses = [
        await api.post("/api/v1/files/upload", json={"file": "a.txt"}, headers=ALICE),
        await api.post("/api/v1/files/upload", data=no_file, headers=ALICE),
        await api.post("/api/v1/files/upload", data=extra, headers=ALICE),
    ]

    assert "multipart/form-data" in await failure(responses[0], 400)
    assert "no file" in await failure(responses[1], 400)
    assert "'comment'" in await failure(responses[2], 400)
    assert await listing(api) == [("user_upload", "dir", 0)]


async def test_non_ascii_names_round_trip(api: Client) -> None:
    name = '报告 "final".txt'

    uploaded = await ok(await upload(api, name, "内容".encode()))
    response = await api.get("/api/v1/files/download", params={"path": uploaded["path"]}, headers=ALICE)

    assert uploaded["path"] == f"user_upload/{name}"
    assert await response.read() == "内容".encode()
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=\"__ _final_.txt\"; filename*=UTF-8''")
    assert "%E6%8A%A5%E5%91%8A%20%22final%22.txt" in disposition


async def test_routes_are_in_the_openapi_document(client: Client) -> None:
    document = await (await client.get("/openapi.json")).json()

    paths = document["paths"]
    for prefix in ("/api/v1", "/api/v1/workspaces/{workspace_id}"):
        assert set(paths[f"{prefix}/files"]) == {"get"}
        assert set(paths[f"{prefix}/files/download"]) == {"get"}
        post = paths[f"{prefix}/files/upload"]["post"]
        assert set(post["requestBody"]["content"]) == {"multipart/form-data"}
        assert "413" in post["responses"]
    assert [p["name"] for p in paths["/api/v1/files"]["get"]["parameters"]] == ["path"]


async def test_the_sandbox_shares_the_workspace(
    api: Client, docker_client: docker.DockerClient, sandbox_image: str, instance_id: str
) -> None:
    await ok(await upload(api, "input.txt", b"from the user\n", path="in"))
    factory = DockerSandboxFactory(
        docker_client, sandbox_image, SandboxLimits(memory_mb=256, workspace_size_mb=32), instance_id
    )
    request = SandboxRequest(owner="alice", run_id="files-test", workspace_dir=await files_dir(api, "alice"))

    async with factory.open(request) as sandbox:
        read = await sandbox.run_bash("cat user_upload/in/input.txt", timeout=30)
        wrote = await sandbox.run_bash(
            "echo x > out.txt && echo 'agent edit' >> user_upload/in/input.txt && touch user_upload/in/new",
            timeout=30,
        )

    assert read.exit_code == 0, read.stderr.text
    assert read.stdout.text == "from the user\n"
    assert wrote.exit_code == 0, wrote.stderr.text
    assert ("out.txt", "file", 2) in await listing(api)
    assert await download(api, "out.txt") == b"x\n"
    assert await download(api, "user_upload/in/input.txt") == b"from the user\nagent edit\n"
    assert ("user_upload/in/new", "file", 0) in await listing(api)
