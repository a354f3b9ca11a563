"""``/metrics``, ``/ready`` and traces, on the real app with real containers and the scripted model."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import docker
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.web.telemetry import HTTP_METRICS
from runtime.telemetry import ENGINE_METRICS, Telemetry
from tests.api.conftest import ALICE, TWO_USER_KEYS, ClientMaker, SettingsMaker
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls

Client = TestClient[Any, Any]

DOCS = Path(__file__).parents[2] / "docs" / "observability.md"


async def scrape(
    client: Client, headers: dict[str, str] | None = None
) -> dict[tuple[str, frozenset[Any]], float]:
    """Every sample of ``/metrics``: (name, labels) -> value."""
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def script_tool_run(model_server: ScriptedModelServer) -> None:
    """A run with a Python call that prints, a call of a tool that does not exist, then the answer."""
    model_server.extend(
        [
            ToolCalls([Call("execute_python", {"code": "print(6 * 7)"}), Call("rm_everything", {})]),
            Reply("42"),
        ]
    )


# --- /metrics -----------------------------------------------------------------------------------


async def test_metrics_need_an_operators_key(make_client: ClientMaker) -> None:
    client = await make_client(api_keys=TWO_USER_KEYS)

    refused = await client.get("/metrics")
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    allowed = await client.get("/metrics", headers=ALICE)

    assert (refused.status, wrong.status, allowed.status) == (401, 401, 200)
    assert "agent_runs_started_total" in await allowed.text()


async def test_a_platform_nodes_key_is_not_an_operators(make_client: ClientMaker) -> None:
    client = await make_client(api_keys=TWO_USER_KEYS, registration="open")
    node = {"username": "some_node", "email": "node@example.com", "capabilities": ["text_generation"]}
    registered = await client.post("/v1/auth/register", json=node)
    assert registered.status == 200, await registered.text()
    key = (await registered.json())["data"]["api_key"]

    response = await client.get("/metrics", headers={"Authorization": f"Bearer {key}"})

    assert response.status == 403
    assert "AGENT_API_KEYS" in (await response.json())["error"]


async def test_metrics_public_opens_them_without_a_key(make_client: ClientMaker) -> None:
    client = await make_client(api_keys=TWO_USER_KEYS, metrics_public=True, public_rate_limit_per_minute=7)

    response = await client.get("/metrics")

    assert response.status == 200
    assert response.headers["RateLimit-Limit"] == "7"  # charged to the address, as /health is


async def test_a_chat_run_moves_the_counters(client: Client, model_server: ScriptedModelServer) -> None:
    script_tool_run(model_server)
    ghost = str(uuid.uuid4())

    answer = await client.post("/chat", json={"message": "6 times 7?"})
    assert answer.status == 200 and (await answer.json())["response"] == "42"
    assert (await client.get(f"/api/v1/tasks/{ghost}")).status == 404
    assert (await client.get(f"/no-such-{ghost}")).status == 404
    samples = await scrape(client)

    assert value(samples, "agent_http_requests_total", method="POST", route="/chat", status="200") == 1
    assert value(samples, "agent_http_request_duration_seconds_count", method="POST", route="/chat") == 1
    assert (
        value(
            samples, "agent_http_requests_total", method="GET", route="/api/v1/tasks/{task_id}", status="404"
        )
        == 1
    )
    assert value(samples, "agent_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert not any(ghost in str(labels) for _, labels in samples)  # templates, never raw paths
    assert value(samples, "agent_runs_started_total", kind="chat") == 1
    assert value(samples, "agent_runs_finished_total", kind="chat", outcome="completed") == 1
    assert value(samples, "agent_run_iterations_sum", kind="chat") == 2
    assert value(samples, "agent_iterations_total", kind="chat") == 2
    assert value(samples, "agent_model_calls_total", model="scripted-model", outcome="ok") == 2
    assert value(samples, "agent_model_call_duration_seconds_count", model="scripted-model") == 2
    assert value(samples, "agent_model_tokens_total", model="scripted-model", type="input") == 20
    assert value(samples, "agent_model_tokens_total", model="scripted-model", type="output") == 10
    assert value(samples, "agent_tool_calls_total", tool="execute_python", outcome="ok") == 1
    assert value(samples, "agent_tool_calls_total", tool="unknown", outcome="rejected") == 1
    assert value(samples, "agent_tool_call_duration_seconds_count", tool="execute_python") == 1
    assert value(samples, "agent_sandbox_starts_total", kind="ephemeral") == 1
    assert value(samples, "agent_sandbox_start_duration_seconds_count", kind="ephemeral") == 1
    assert value(samples, "agent_sandbox_pool_cold_starts_total") == 1  # the pool is off in tests
    assert value(samples, "agent_sandbox_pool_claims_total") == 0
    # Batches end at each tool call and at the end: at least three writes for this run.
    assert value(samples, "agent_event_store_write_duration_seconds_count") >= 3
    assert value(samples, "agent_event_store_events_total") >= 8
    assert value(samples, "agent_tasks_running") == 0 and value(samples, "agent_tasks_pending") == 0


async def test_a_task_run_is_counted_as_a_task(client: Client, model_server: ScriptedModelServer) -> None:
    model_server.add(Reply("done"))

    sent = await client.post("/api/v1/messages", json={"message": "hi"})
    assert sent.status == 202, await sent.text()
    task_id = (await sent.json())["task_id"]
    for _ in range(100):
        polled = await (await client.get(f"/api/v1/tasks/{task_id}", params={"wait": "2"})).json()
        if polled["data"]["status"] not in ("pending", "running"):
            break
    assert polled["data"]["status"] == "completed"
    samples = await scrape(client)

    assert value(samples, "agent_runs_finished_total", kind="task", outcome="completed") == 1
    assert value(samples, "agent_model_calls_total", model="scripted-model", outcome="ok") == 1


def test_the_docs_list_every_metric() -> None:
    documented = DOCS.read_text()
    missing = [name for name, *_ in ENGINE_METRICS + HTTP_METRICS if f"`{name}`" not in documented]
    assert missing == []


# --- /ready -------------------------------------------------------------------------------------


async def ready(client: Client) -> tuple[int, dict[str, dict[str, Any]]]:
    response = await client.get("/ready")
    body = await response.json()
    assert body["status"] == ("ready" if response.status == 200 else "not_ready")
    return response.status, {check["name"]: check for check in body["checks"]}


async def test_ready_when_store_sandbox_and_model_answer(make_client: ClientMaker) -> None:
    client = await make_client(api_keys=TWO_USER_KEYS)  # probes send no key

    status, checks = await ready(client)

    assert status == 200
    assert checks == {
        "store": {"name": "store", "ok": True, "reason": None},
        "sandbox": {"name": "sandbox", "ok": True, "reason": None},
        "model:default": {"name": "model:default", "ok": True, "reason": None},
    }
    assert (await client.get("/health")).status == 200


async def test_not_ready_naming_the_model_when_its_server_stops(
    client: Client, model_server: ScriptedModelServer
) -> None:
    await model_server.__aexit__(None, None, None)

    status, checks = await ready(client)

    assert status == 503
    assert checks["model:default"] == {"name": "model:default", "ok": False, "reason": "unreachable"}
    assert checks["store"]["ok"] and checks["sandbox"]["ok"]
    assert (await client.get("/health")).status == 200  # alive all the same: liveness is not readiness


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A base URL whose server accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/v1"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_not_ready_when_the_model_does_not_answer_in_time(
    make_client: ClientMaker, silent_server: str
) -> None:
    models = (
        f'[{{"key": "slow", "model": "m", "base_url": "{silent_server}"}}, {{"key": "fine", "model": "m"}}]'
    )
    client = await make_client(models=models, ready_timeout=0.5)

    status, checks = await ready(client)

    assert status == 503
    assert checks["model:slow"]["reason"] == "no answer within 0.5 s"
    assert checks["model:fine"]["ok"]


async def test_not_ready_naming_the_image_when_it_is_gone(
    make_client: ClientMaker, sandbox_image: str, instance_id: str, docker_client: docker.DockerClient
) -> None:
    tag = f"agent-worker-sandbox:ready-{instance_id}"
    docker_client.images.get(sandbox_image).tag(tag)
    try:
        client = await make_client(sandbox_image=tag)
        assert (await ready(client))[0] == 200
        docker_client.images.remove(tag)  # only the tag: the image keeps its other one

        status, checks = await ready(client)
    finally:
        if docker_client.images.list(name=tag):
            docker_client.images.remove(tag)

    assert status == 503
    assert checks["sandbox"] == {"name": "sandbox", "ok": False, "reason": f"sandbox image {tag} missing"}
    assert checks["model:default"]["ok"]


# --- traces -------------------------------------------------------------------------------------


@pytest.fixture
async def traced(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: SettingsMaker,
    docker_client: docker.DockerClient,
) -> AsyncIterator[tuple[Client, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = await aiohttp_client(create_app(make_settings(), Telemetry(provider)))
    yield client, exporter
    await client.close()
    provider.shutdown()


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def test_a_run_is_traced_with_its_model_and_tool_calls(
    traced: tuple[Client, InMemorySpanExporter],
    model_server: ScriptedModelServer,
    capfd: pytest.CaptureFixture[str],
) -> None:
    client, exporter = traced
    script_tool_run(model_server)
    caller_trace = "0af7651916cd43dd8448eb211c80319c"

    answer = await client.post(
        "/chat",
        json={"message": "6 times 7?"},
        headers={"traceparent": f"00-{caller_trace}-b7ad6b7169203331-01"},
    )
    run_id = (await answer.json())["id"]
    spans = exporter.get_finished_spans()

    [request] = by_name(spans, "POST /chat")
    [run] = by_name(spans, "invoke_agent chat")
    models = by_name(spans, "chat scripted-model")
    [python] = by_name(spans, "execute_tool execute_python")
    [unknown] = by_name(spans, "execute_tool unknown")
    assert f"{request.context.trace_id:032x}" == caller_trace  # the caller's trace goes on
    assert (
        request.attributes["http.route"] == "/chat" and request.attributes["http.response.status_code"] == 200
    )
    assert run.parent is not None and run.parent.span_id == request.context.span_id
    assert len(models) == 2
    for child in (*models, python, unknown):
        assert child.parent is not None and child.parent.span_id == run.context.span_id
        assert child.context.trace_id == request.context.trace_id
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["agent_worker.run.id"] == run_id
    assert run.attributes["agent_worker.run.iterations"] == 2
    first = models[0].attributes
    assert first["gen_ai.operation.name"] == "chat"
    assert first["gen_ai.request.model"] == "scripted-model"
    assert (first["gen_ai.usage.input_tokens"], first["gen_ai.usage.output_tokens"]) == (10, 5)
    assert first["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert python.attributes["gen_ai.operation.name"] == "execute_tool"
    assert python.attributes["gen_ai.tool.name"] == "execute_python"
    assert python.attributes["gen_ai.tool.call.id"] == "call_1"
    assert python.attributes["agent_worker.tool.outcome"] == "ok"
    assert python.attributes["process.exit.code"] == 0
    assert unknown.attributes["gen_ai.tool.name"] == "rm_everything"
    assert unknown.attributes["error.type"] == "rejected"
    assert f"trace_id={caller_trace}" in capfd.readouterr().out  # the request's log lines name the trace
    [start] = by_name(spans, "start_sandbox ephemeral")
    assert start.context.trace_id == request.context.trace_id  # started for this run, inside its trace


@pytest.fixture
async def collector() -> AsyncIterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """An OTLP/HTTP collector on loopback: its base URL, and the export requests it got."""
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        received.append(ExportTraceServiceRequest.FromString(await request.read()))
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", received
    await runner.cleanup()


async def test_spans_are_exported_over_otlp_when_the_endpoint_is_set(
    make_client: ClientMaker,
    model_server: ScriptedModelServer,
    collector: tuple[str, list[ExportTraceServiceRequest]],
) -> None:
    endpoint, received = collector
    model_server.add(Reply("hi"))
    client = await make_client(otel_exporter_otlp_endpoint=endpoint)

    assert (await client.post("/chat", json={"message": "hi"})).status == 200
    await client.close()  # the worker's shutdown exports the spans still in its batch

    resources = [spans for request in received for spans in request.resource_spans]
    names = {span.name for resource in resources for scope in resource.scope_spans for span in scope.spans}
    assert {"POST /chat", "invoke_agent chat", "chat scripted-model"} <= names
    service = {a.key: a.value.string_value for a in resources[0].resource.attributes}["service.name"]
    assert service == "agent-worker"
