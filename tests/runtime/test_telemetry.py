"""The telemetry seam on its own: outcomes of runs and tool calls that end badly, sandbox starts, live gauges."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from runtime.engine.tools import ToolOutcome
from runtime.errors import SandboxFailedError
from runtime.telemetry import ObservedSandboxes, Telemetry, tool_outcome
from sandbox.base import SandboxRequest
from sandbox.errors import SandboxStartError
from tests.fakes.sandbox import FakeSandboxFactory


def sample(telemetry: Telemetry, name: str, **labels: str) -> float:
    return telemetry.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def traced() -> tuple[Telemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Telemetry(provider), exporter


async def test_a_canceled_run_and_a_failed_one_are_counted_as_such(
    traced: tuple[Telemetry, InMemorySpanExporter],
) -> None:
    telemetry, exporter = traced

    async def run_until_canceled() -> None:
        with telemetry.run("task", "t1", "m") as run:
            run.iteration(1)
            await asyncio.Event().wait()

    task = asyncio.create_task(run_until_canceled())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(RuntimeError), telemetry.run("task", "t2", "m"):
        raise RuntimeError("store gone")
    with telemetry.run("chat", "c1", "m") as run:
        run.ended(3, "max_iterations (3) reached")

    assert sample(telemetry, "agent_runs_finished_total", kind="task", outcome="canceled") == 1
    assert sample(telemetry, "agent_runs_finished_total", kind="task", outcome="failed") == 1
    assert sample(telemetry, "agent_runs_finished_total", kind="chat", outcome="failed") == 1
    assert sample(telemetry, "agent_run_iterations_sum", kind="chat") == 3
    canceled, crashed, gave_up = exporter.get_finished_spans()
    assert canceled.status.status_code is StatusCode.UNSET  # a cancellation is not an error
    assert (
        crashed.status.status_code is StatusCode.ERROR and crashed.attributes["error.type"] == "RuntimeError"
    )
    assert gave_up.status.status_code is StatusCode.ERROR


async def test_tool_call_outcomes(traced: tuple[Telemetry, InMemorySpanExporter]) -> None:
    telemetry, exporter = traced

    with telemetry.run("chat", "c1", "m") as run:
        with run.tool_call("execute_bash", "call_1") as call:
            call.result(ToolOutcome(success=False, returncode=2))
        with pytest.raises(SandboxFailedError), run.tool_call("execute_python", "call_2"):
            raise SandboxFailedError("the sandbox failed: gone")
        with run.tool_call("x" * 500, "call_3") as call:
            call.result(ToolOutcome.rejected("Unknown tool"))

    assert sample(telemetry, "agent_tool_calls_total", tool="execute_bash", outcome="nonzero_exit") == 1
    assert sample(telemetry, "agent_tool_calls_total", tool="execute_python", outcome="sandbox_failed") == 1
    assert sample(telemetry, "agent_tool_calls_total", tool="unknown", outcome="rejected") == 1
    bash, python, unknown = exporter.get_finished_spans()[:3]
    assert bash.attributes["process.exit.code"] == 2 and bash.status.status_code is StatusCode.UNSET
    assert python.attributes["error.type"] == "SandboxFailedError"
    assert len(str(unknown.attributes["gen_ai.tool.name"])) == 100


def test_tool_outcome_labels() -> None:
    assert tool_outcome(ToolOutcome(success=True, returncode=0)) == "ok"
    assert tool_outcome(ToolOutcome(success=False, timed_out=True)) == "timed_out"
    assert tool_outcome(ToolOutcome(success=False, returncode=137, oom_killed=True)) == "oom_killed"


async def test_sandbox_starts_are_counted_and_a_failed_one_is_traced(
    traced: tuple[Telemetry, InMemorySpanExporter],
) -> None:
    telemetry, exporter = traced
    observed = ObservedSandboxes(FakeSandboxFactory(), telemetry, "ephemeral")

    async with observed.open(SandboxRequest(owner="a", run_id="r")) as sandbox:
        assert await sandbox.alive()

    class Broken:
        def open(self, request: SandboxRequest) -> Any:
            raise SandboxStartError("engine down")

    with pytest.raises(SandboxStartError):
        async with ObservedSandboxes(Broken(), telemetry, "workspace").open(
            SandboxRequest(owner="a", run_id="r")
        ):
            pass

    assert sample(telemetry, "agent_sandbox_starts_total", kind="ephemeral") == 1
    assert sample(telemetry, "agent_sandbox_starts_total", kind="workspace") == 0
    started, failed = exporter.get_finished_spans()
    assert started.name == "start_sandbox ephemeral" and failed.status.status_code is StatusCode.ERROR


@dataclass
class Pool:
    ready: int
    size: int
    claims: int
    cold_starts: int
    spares_started: int
    spare_start_seconds: float


def test_pool_and_task_figures_are_read_at_scrape_time() -> None:
    telemetry = Telemetry()
    assert telemetry.registry.get_sample_value("agent_sandbox_pool_ready") is None  # none before start-up
    pools = [Pool(1, 2, 3, 4, 5, 0.5), Pool(2, 2, 1, 0, 2, 0.25)]

    @dataclass
    class Tasks:
        running_count: int = 0
        pending_count: int = 0

    tasks = Tasks()
    telemetry.watch_pools(lambda: pools)
    telemetry.watch_tasks(tasks)
    tasks.running_count, tasks.pending_count = 4, 7

    assert sample(telemetry, "agent_sandbox_pool_ready") == 3
    assert sample(telemetry, "agent_sandbox_pool_target") == 4
    assert sample(telemetry, "agent_sandbox_pool_claims_total") == 4
    assert sample(telemetry, "agent_sandbox_pool_spare_start_seconds_total") == 0.75
    assert (sample(telemetry, "agent_tasks_running"), sample(telemetry, "agent_tasks_pending")) == (4, 7)
