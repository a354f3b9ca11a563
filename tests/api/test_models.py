"""Several models: AGENT_MODELS parsing, ``/api/v1/models``, ``/chat`` on the default one; ``/api/v1/health``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import docker
import docker.errors
import pytest
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from api.cli import main
from api.settings import Settings
from tests.api.conftest import ClientMaker
from tests.fakes import Reply, ScriptedModelServer

Client = TestClient[Any, Any]

SECRET = "sk-smart-secret-123"


@pytest.fixture
async def other_server() -> AsyncIterator[ScriptedModelServer]:
    async with ScriptedModelServer() as server:
        yield server


def two_models(other: ScriptedModelServer) -> list[dict[str, Any]]:
    """``fast`` on the default server (OPENAI_BASE_URL / OPENAI_API_KEY), ``smart`` on its own."""
    return [
        {"key": "fast", "model": "fast-model", "description": "quick answers"},
        {
            "key": "smart",
            "model": "smart-model",
            "base_url": other.base_url,
            "api_key": SECRET,
            "reasoning_effort": "high",
        },
    ]


# --- settings ------------------------------------------------------------------------------------


def test_agent_models_json_falls_back_to_the_openai_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://shared:8000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "shared-key")
    monkeypatch.setenv("AGENT_MODEL_TIMEOUT", "7")
    models = [
        {"key": "fast", "model": "qwen2.5"},
        {
            "key": "smart",
            "model": "o3",
            "base_url": "http://other/v1",
            "api_key": "k2",
            "reasoning_effort": "high",
        },
    ]
    monkeypatch.setenv("AGENT_MODELS", json.dumps(models))
    monkeypatch.setenv("AGENT_DEFAULT_MODEL", "smart")

    settings = Settings()

    assert settings.default_model == "smart"
    fast, smart = settings.registered_models()
    assert (fast.key, fast.config.model, fast.config.base_url, fast.config.api_key) == (
        "fast",
        "qwen2.5",
        "http://shared:8000/v1",
        "shared-key",
    )
    assert fast.config.reasoning_effort is None
    assert (smart.config.model, smart.config.base_url, smart.config.api_key) == (
        "o3",
        "http://other/v1",
        "k2",
    )
    assert smart.config.reasoning_effort == "high"
    assert fast.config.request_timeout == smart.config.request_timeout == 7.0


@pytest.mark.parametrize("value", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_without_agent_models_agent_model_is_the_default_entry(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    monkeypatch.setenv("AGENT_MODEL", "llama3")
    if value is None:
        monkeypatch.delenv("AGENT_MODELS", raising=False)
    else:
        monkeypatch.setenv("AGENT_MODELS", value)

    [only] = Settings().registered_models()

    assert (only.key, only.config.model) == ("default", "llama3")


@pytest.mark.parametrize(
    ("models", "default", "message"),
    [
        ("[{]", None, "AGENT_MODELS is not valid JSON"),
        ('{"key": "a", "model": "m"}', None, "should be a valid list"),
        ('[{"key": "a", "model": "m"}, {"key": "a", "model": "n"}]', None, "duplicate keys: a"),
        ('[{"key": "has space", "model": "m"}]', None, "String should match pattern"),
        ('[{"key": "a"}]', None, "models.0.model"),
        ('[{"key": "a", "model": "m", "baseurl": "x"}]', None, "models.0.baseurl"),
        ('[{"key": "a", "model": "m"}]', "b", "AGENT_DEFAULT_MODEL 'b' is not one of the model keys: a"),
        (None, "fast", "AGENT_DEFAULT_MODEL 'fast' is not one of the model keys: default"),
    ],
    ids=[
        "bad-json",
        "not-a-list",
        "duplicate",
        "bad-key",
        "no-model",
        "unknown-field",
        "bad-default",
        "single",
    ],
)
def test_invalid_model_settings_are_clear_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, models: str | None, default: str | None, message: str
) -> None:
    if models is not None:
        monkeypatch.setenv("AGENT_MODELS", models.replace('"m"}', f'"m", "api_key": "{SECRET}"}}'))
    if default is not None:
        monkeypatch.setenv("AGENT_DEFAULT_MODEL", default)

    with pytest.raises(ValidationError) as failure:
        Settings()

    assert message in str(failure.value)
    assert SECRET not in str(failure.value)


def test_cli_reports_a_bad_agent_models_without_its_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENT_MODELS", f'[{{"key": "a b", "model": "m", "api_key": "{SECRET}"}}]')

    assert main(["serve"]) == 2

    err = capsys.readouterr().err
    assert "invalid configuration" in err
    assert "models.0.key" in err
    assert SECRET not in err


# --- /api/v1/models and /chat ---------------------------------------------------------------------


async def test_single_model_is_listed_as_default(client: Client, model_server: ScriptedModelServer) -> None:
    response = await client.get("/api/v1/models")

    assert response.status == 200
    assert await response.json() == {
        "success": True,
        "models": [
            {
                "key": "default",
                "model": "scripted-model",
                "base_url": model_server.base_url,
                "description": "",
                "default": True,
            }
        ],
        "default": "default",
    }


async def test_models_are_listed_without_secrets(
    make_client: ClientMaker, model_server: ScriptedModelServer, other_server: ScriptedModelServer
) -> None:
    client = await make_client(models=two_models(other_server), default_model="smart")

    response = await client.get("/api/v1/models")

    assert response.status == 200
    text = await response.text()
    assert SECRET not in text
    assert "test-key" not in text  # OPENAI_API_KEY, which `fast` inherits
    body = json.loads(text)
    assert body["default"] == "smart"
    assert body["models"] == [
        {
            "key": "fast",
            "model": "fast-model",
            "base_url": model_server.base_url,
            "description": "quick answers",
            "default": False,
        },
        {
            "key": "smart",
            "model": "smart-model",
            "base_url": other_server.base_url,
            "description": "",
            "default": True,
        },
    ]


@pytest.mark.parametrize(
    ("default", "expected"), [(None, "fast"), ("smart", "smart")], ids=["first-entry", "explicit"]
)
async def test_chat_runs_on_the_default_model(
    make_client: ClientMaker,
    model_server: ScriptedModelServer,
    other_server: ScriptedModelServer,
    default: str | None,
    expected: str,
) -> None:
    servers = {"fast": model_server, "smart": other_server}
    servers[expected].add(Reply(f"answered by {expected}"))
    client = await make_client(models=two_models(other_server), default_model=default)

    response = await client.post("/chat", json={"message": "hi", "max_iterations": 2})

    assert response.status == 200
    assert (await response.json())["response"] == f"answered by {expected}"
    used, unused = servers[expected], servers["smart" if expected == "fast" else "fast"]
    assert [r["model"] for r in used.requests] == [f"{expected}-model"]
    assert unused.requests == []
    if expected == "smart":  # its own key and reasoning effort, not the shared ones
        assert used.headers[0]["Authorization"] == f"Bearer {SECRET}"
        assert used.requests[0]["reasoning_effort"] == "high"
    else:
        assert used.headers[0]["Authorization"] == "Bearer test-key"
        assert "reasoning_effort" not in used.requests[0]
    used.assert_script_consumed()


# --- /api/v1/health -------------------------------------------------------------------------------


async def test_api_health_needs_a_token_and_uses_the_envelope(make_client: ClientMaker) -> None:
    client = await make_client(api_keys="alice:tok-a")
    before = time.time()

    anonymous = await client.get("/api/v1/health")
    authorized = await client.get("/api/v1/health", headers={"Authorization": "Bearer tok-a"})

    assert anonymous.status == 401
    assert (await anonymous.json())["success"] is False
    assert authorized.status == 200
    body = await authorized.json()
    assert set(body) == {"success", "status", "timestamp"}
    assert (body["success"], body["status"]) == (True, "healthy")
    assert before <= body["timestamp"] <= time.time()


@pytest.fixture
def disposable_image_tag(docker_client: docker.DockerClient, sandbox_image: str) -> Any:
    """A second tag of the sandbox image, which a test can remove without affecting others."""
    repository, tag = "agent-worker-sandbox", f"health-{uuid.uuid4().hex[:8]}"
    docker_client.api.tag(sandbox_image, repository, tag)
    yield f"{repository}:{tag}"
    try:
        docker_client.api.remove_image(f"{repository}:{tag}")
    except docker.errors.ImageNotFound:
        pass


async def test_api_health_is_503_with_the_reason_when_the_image_is_gone(
    make_client: ClientMaker, docker_client: docker.DockerClient, disposable_image_tag: str
) -> None:
    client = await make_client(sandbox_image=disposable_image_tag)
    assert (await client.get("/api/v1/health")).status == 200

    docker_client.api.remove_image(disposable_image_tag)  # untags only: the image stays
    response = await client.get("/api/v1/health")
    plain = await client.get("/health")

    assert response.status == 503
    body = await response.json()
    assert set(body) == {"success", "status", "error", "timestamp"}
    assert (body["success"], body["status"]) == (False, "unhealthy")
    assert body["error"] == f"sandbox image {disposable_image_tag} missing"
    assert plain.status == 503
    assert (await plain.json())["reason"] == body["error"]
