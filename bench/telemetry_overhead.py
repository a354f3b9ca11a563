"""What metrics and traces cost on the hot paths: a tool call, an event batch, a whole run.

```bash
.venv/bin/python bench/telemetry_overhead.py --calls 20000 --runs 300
```

- Per tool call: what the loop adds around one call (its span, counter and histogram), with the
  no-op tracer (traces off, the default) and with the SDK's tracer and batching processor (traces
  on; the exporter drops the spans, so no network is measured).
- Per event batch: the store-write histogram and event counter (:meth:`Telemetry.stored`).
- Per run, side by side: the same run of the agent loop (an in-process model that asks for one
  ``execute_bash`` call then answers, the in-memory sandbox, events stored in a real SQLite store)
  unobserved, with metrics, and with metrics and traces. The runs alternate so drift hits all three.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from runtime.engine.events import ToolCallRequest, Usage
from runtime.engine.loop import LoopConfig, run_agent
from runtime.engine.model_client import ModelRequest, ModelTurn
from runtime.engine.runs import LazySandbox, StoreSink
from runtime.engine.tools import ToolOutcome
from runtime.store import Store
from runtime.telemetry import RunObserver, Telemetry
from sandbox.base import SandboxRequest
from tests.fakes.sandbox import Exit, FakeSandboxFactory


class _Dropping(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _Model:
    """Asks for one bash call, then answers: no network, so the loop's own costs show."""

    name = "bench-model"

    async def complete(self, request: ModelRequest) -> ModelTurn:
        usage = Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15)
        if request.messages[-1]["role"] == "tool":
            return ModelTurn(content="done", usage=usage)
        call = ToolCallRequest(id="call_1", name="execute_bash", arguments='{"command": "true"}')
        return ModelTurn(tool_calls=[call], finish_reason="tool_calls", usage=usage)


def traced() -> tuple[Telemetry, TracerProvider]:
    provider = TracerProvider()
    # A queue that holds every span of a round: a full queue drops spans, which is cheaper than keeping them.
    provider.add_span_processor(BatchSpanProcessor(_Dropping(), max_queue_size=1_000_000))
    return Telemetry(provider), provider


def per_call(calls: int, repeats: int = 5) -> dict[str, float]:
    """Microseconds per tool call's recording and per event batch's: the best of ``repeats`` rounds
    (the machine is shared; the best round is the one least disturbed)."""
    outcome = ToolOutcome(success=True, returncode=0, duration=0.001)
    on, provider = traced()
    figures: dict[str, float] = {}

    def best(label: str, round_: Callable[[], None]) -> None:
        for _ in range(repeats):
            started = time.perf_counter()
            round_()
            micros = (time.perf_counter() - started) / calls * 1e6
            figures[label] = min(figures.get(label, micros), micros)

    for label, telemetry in (("traces off", Telemetry()), ("traces on", on)):
        with telemetry.run("chat", "bench", "m") as run:

            def tool_calls(run: RunObserver = run) -> None:
                for _ in range(calls):
                    with run.tool_call("execute_bash", "call_1") as observed:
                        observed.result(outcome)

            best(f"tool call recorded ({label})", tool_calls)
    off = Telemetry()

    def batches() -> None:
        for _ in range(calls):
            off.stored(5, 0.001)

    best("event batch recorded", batches)
    provider.shutdown()
    return figures


async def one_run(
    store: Store, telemetry: Telemetry | None, factory: FakeSandboxFactory, number: int
) -> float:
    run_id = f"run-{number}"
    await store.create_run(run_id, "bench", kind="chat")
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    started = time.perf_counter()
    async with StoreSink(store, run_id, telemetry) as sink:
        lazy = LazySandbox(lambda: factory.open(SandboxRequest(owner="bench", run_id=run_id)))
        observing = nullcontext(None) if telemetry is None else telemetry.run("chat", run_id, "bench-model")
        async with lazy:
            with observing as observer:
                await run_agent(
                    messages,
                    model=_Model(),
                    get_sandbox=lazy,
                    config=LoopConfig(),
                    max_iterations=3,
                    sink=sink,
                    observer=observer,
                )
    return (time.perf_counter() - started) * 1000


async def per_run(runs: int) -> dict[str, list[float]]:
    on, provider = traced()
    modes: dict[str, Telemetry | None] = {"unobserved": None, "metrics": Telemetry(), "metrics + traces": on}
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    factory = FakeSandboxFactory({"true": Exit()})
    with tempfile.TemporaryDirectory() as directory:
        async with Store.open(Path(directory) / "bench.sqlite3") as store:
            numbers = itertools.count()
            for _ in range(runs):
                for mode, telemetry in modes.items():
                    times[mode].append(await one_run(store, telemetry, factory, next(numbers)))
    provider.shutdown()
    return times


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    for label, micros in per_call(args.calls).items():
        print(f"{label:40s} {micros:7.2f} µs  (n={args.calls})")
    times = asyncio.run(per_run(args.runs))
    base = statistics.median(times["unobserved"])
    for mode, values in times.items():
        values.sort()
        p50, p95 = statistics.median(values), values[int(len(values) * 0.95)]
        print(
            f"run ({mode:17s})                 p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  x{p50 / base:.2f}  (n={len(values)})"
        )


if __name__ == "__main__":
    main()
