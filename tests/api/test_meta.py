"""Service metadata, health, the OpenAPI document, the offline docs page, request ids."""

from __future__ import annotations

import time
from typing import Any

import docker
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from api.app import create_app
from sandbox.errors import SandboxImageError
from tests.api.conftest import SettingsMaker

Client = TestClient[Any, Any]


async def test_root_lists_name_version_and_links(client: Client) -> None:
    response = await client.get("/")

    assert response.status == 200
    assert await response.json() == {
        "name": "agent-worker",
        "version": "0.1.0",
        "docs": "/docs",
        "health": "/health",
    }


async def test_health_is_healthy_once_store_and_image_are_ready(client: Client) -> None:
    before = time.time()

    response = await client.get("/health")

    assert response.status == 200
    body = await response.json()
    assert body["status"] == "healthy"
    assert before <= body["timestamp"] <= time.time()
    assert set(body) == {"status", "timestamp"}


async def test_openapi_document_describes_every_route(client: Client) -> None:
    response = await client.get("/openapi.json")

    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "agent-worker"
    chat = document["paths"]["/chat"]["post"]
    request_schema = chat["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema["$ref"].endswith("/ChatRequest")
    schemas = document["components"]["schemas"]
    assert schemas["ChatRequest"]["properties"]["max_iterations"]["maximum"] == 20
    assert schemas["ChatRequest"]["required"] == ["message"]
    assert {"200", "400", "413"} <= set(chat["responses"])
    assert set(document["paths"]) >= {"/", "/health", "/chat"}


async def test_docs_page_and_its_assets_are_served_locally(client: Client) -> None:
    page = await client.get("/docs")
    assert page.status == 200
    html = await page.text()
    assert "/openapi.json" in html
    assert "https://" not in html  # no CDN

    script = await client.get("/docs/static/swagger-ui-bundle.js")
    assert script.status == 200
    assert len(await script.read()) > 100_000


async def test_request_id_is_echoed_or_generated(client: Client) -> None:
    echoed = await client.get("/", headers={"X-Request-ID": "trace-123"})
    generated = await client.get("/")

    assert echoed.headers["X-Request-ID"] == "trace-123"
    assert len(generated.headers["X-Request-ID"]) == 32


async def test_startup_fails_clearly_when_the_image_cannot_be_built(
    make_settings: SettingsMaker, empty_base: str, instance_id: str, docker_client: docker.DockerClient
) -> None:
    tag = f"agent-worker-sandbox:{instance_id}"
    settings = make_settings(sandbox_image=tag, sandbox_base_image=empty_base)

    runner = web.AppRunner(create_app(settings))
    with pytest.raises(SandboxImageError) as failure:
        try:
            await runner.setup()
        finally:
            await runner.cleanup()  # a no-op: the failed start-up closed what it had opened

    assert f"building sandbox image {tag} from {empty_base} failed" in str(failure.value)
    assert not docker_client.images.list(name=tag)


async def test_openapi_covers_every_route(client: Client) -> None:
    document = await (await client.get("/openapi.json")).json()
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}

    served = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    pages = ("/docs", "/console")  # HTML pages and their files (the console: docs/console.md)
    undocumented = {
        (method, path) for method, path in served if not path.startswith(pages) and path != "/openapi.json"
    } - documented

    assert undocumented == set()
    assert ("GET", "/api/v1/workspaces/{workspace_id}/files") in documented
    assert ("GET", "/api/v1/tasks/{task_id}/events") in documented
