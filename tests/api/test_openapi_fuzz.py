"""Property-based fuzzing of the app against its own ``/openapi.json`` (schemathesis).

Every operation of the document gets generated requests, valid and invalid ones, sent to the real
app on loopback with a test user's key and rate limits off; every answer must be no server error
and must agree with the document: a documented status code, a documented content type, a body
that validates against the documented schema. The model answers every run at once (its default
turn), so runs end quickly; each operation is bounded in examples, and the whole in time.

Some answers random requests do not reach (no key, a Content-Type the document does not offer, a
file that exists): those requests are made by hand, and their answers checked the same way.

schemathesis calls through ``requests``, which blocks: the calls run in a worker thread while the
test's event loop serves the app.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from schemathesis.core.result import Err

from tests.api.conftest import ClientMaker
from tests.fakes import Reply, ScriptedModelServer

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

AUTH = {"Authorization": "Bearer tok-fuzz"}
EXAMPLES_PER_MODE = 40  # per operation, for valid and for invalid requests each
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
# A stream that stays open as long as the client reads: a fuzzed call would never end. (GET /mcp
# streams only for a session, which random requests never have.)
STREAMS = {("GET", "/mcp/sse")}


def _fuzz(document: dict[str, Any], base_url: str) -> dict[str, str]:
    """{operation: first failure} over every operation of ``document``."""
    schema = schemathesis.openapi.from_dict(document)
    failures: dict[str, str] = {}
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                failures[f"the document ({result.err()})"] = "not a valid OpenAPI operation"
                continue
            operation = result.ok()
            if (operation.method.upper(), operation.path) in STREAMS:
                continue
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=EXAMPLES_PER_MODE,
                    deadline=None,
                    database=None,
                    derandomize=True,  # the same requests every run: a failure reproduces
                    suppress_health_check=list(HealthCheck),
                )
                def call(case: schemathesis.Case) -> None:
                    # Invalid requests would mostly be invalid credentials (a 401 before any handler
                    # runs): every request carries the test key, so the invalid parts reach the routes.
                    case.headers.pop("X-Api-Key", None)  # case-insensitive
                    case.headers.update(AUTH)
                    case.call_and_validate(base_url=base_url, session=session, checks=CHECKS)

                try:
                    call()
                except Unsatisfiable:  # no parameters and no body: nothing to make invalid
                    assert mode is schemathesis.GenerationMode.NEGATIVE
                except (Exception, BaseExceptionGroup) as e:  # schemathesis reports a group
                    failures.setdefault(operation.label, f"{mode.value}: {e}")
    return failures


def _check_by_hand(document: dict[str, Any], base_url: str) -> dict[str, str]:
    """{request: what was wrong} for the requests of ``BY_HAND``."""
    schema = schemathesis.openapi.from_dict(document)
    failures: dict[str, str] = {}
    for method, path, kwargs, status in BY_HAND:
        label = f"{method} {path} {kwargs}"
        response = requests.request(method, f"{base_url}{path}", timeout=30, **kwargs)
        if response.status_code != status:
            failures[label] = f"status {response.status_code}, expected {status}: {response.text[:200]}"
            continue
        try:
            schema[path][method].Case().validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as e:
            failures[label] = str(e)
    return failures


MODERN_MCP = {"MCP-Protocol-Version": "2026-07-28"}  # served by the SDK's other transport code
UPLOADED = {"page.html": b"<p>hi</p>", "data.bin": bytes(range(256))}
BY_HAND: list[tuple[str, str, dict[str, Any], int]] = [
    ("POST", "/mcp", {"headers": {**AUTH, "Content-Type": "text/plain"}, "data": "{}"}, 400),
    ("POST", "/mcp", {"headers": {**AUTH, "Accept": "text/html"}, "json": {}}, 406),
    ("POST", "/mcp", {"headers": {**AUTH, **MODERN_MCP, "Accept": "text/html"}, "json": {}}, 406),  # no body
    ("POST", "/mcp/messages", {"headers": AUTH, "json": {}}, 400),  # no ?session_id=
    ("POST", "/a2a", {"json": {"jsonrpc": "2.0", "id": 1, "method": "ListTasks"}}, 401),
    ("GET", "/metrics", {}, 401),  # a scraper without the key
    *[
        ("GET", "/api/v1/files/download", {"headers": AUTH, "params": {"path": f"user_upload/{name}"}}, 200)
        for name in UPLOADED
    ],
]


@pytest.fixture
async def app(make_client: ClientMaker, model_server: ScriptedModelServer) -> TestClient[Any, Any]:
    model_server.default = Reply("done")
    return await make_client(
        api_keys="fuzz:tok-fuzz",
        rate_limit_per_minute=0,
        rate_limit_concurrency=0,
        public_rate_limit_per_minute=0,
        public_rate_limit_concurrency=0,
        task_max_per_user=1000,
    )


async def test_every_answer_agrees_with_the_openapi_document(app: TestClient[Any, Any]) -> None:
    document = await (await app.get("/openapi.json")).json()
    base_url = str(app.make_url("")).rstrip("/")

    failures = await asyncio.to_thread(_fuzz, document, base_url)

    assert failures == {}, "\n\n".join(f"{label}\n{failure}" for label, failure in failures.items())


async def test_answers_fuzzing_does_not_reach_agree_with_the_document(app: TestClient[Any, Any]) -> None:
    for name, content in UPLOADED.items():
        form = FormData()
        form.add_field("file", content, filename=name)
        assert (await app.post("/api/v1/files/upload", data=form, headers=AUTH)).status == 200
    document = await (await app.get("/openapi.json")).json()
    base_url = str(app.make_url("")).rstrip("/")

    failures = await asyncio.to_thread(_check_by_hand, document, base_url)

    assert failures == {}, "\n\n".join(f"{label}\n{failure}" for label, failure in failures.items())
