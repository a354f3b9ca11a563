"""The engine's Prometheus metrics, on a registry of their own (one per app: tests build many apps).

Every label has a bounded set of values: models come from the configuration, tools from the
tools the worker offers (any other name a model invents is ``unknown``), outcomes and kinds from
the short lists below. Values that only exist at scrape time (spares ready, tasks running and
pending) are read then from the live objects (:class:`LiveCollector`), so nothing on a hot path
updates them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "ENGINE_METRICS",
    "EngineMetrics",
    "LiveCollector",
    "RunKind",
    "RunOutcomeLabel",
    "SandboxKind",
    "ToolOutcomeLabel",
]

RunKind = Literal["chat", "task"]
RunOutcomeLabel = Literal["completed", "failed", "canceled"]
ToolOutcomeLabel = Literal[
    "ok", "nonzero_exit", "timed_out", "oom_killed", "rejected", "sandbox_failed", "canceled"
]
SandboxKind = Literal["ephemeral", "workspace"]

# Model calls and tool calls take seconds to minutes; sandbox starts and store writes milliseconds.
_SLOW_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_ITERATION_BUCKETS = (1, 2, 3, 5, 8, 10, 15, 20, 50)

# name, type, labels, help: the table docs/observability.md shows (a test keeps the two in step).
ENGINE_METRICS: list[tuple[str, str, tuple[str, ...], str]] = [
    ("agent_runs_started_total", "counter", ("kind",), "Runs of the agent loop started."),
    ("agent_runs_finished_total", "counter", ("kind", "outcome"), "Runs ended, by outcome."),
    ("agent_run_duration_seconds", "histogram", ("kind",), "Duration of a run of the agent loop."),
    ("agent_run_iterations", "histogram", ("kind",), "Iterations (model calls) per finished run."),
    ("agent_iterations_total", "counter", ("kind",), "Iterations started (one model call each)."),
    (
        "agent_model_calls_total",
        "counter",
        ("model", "outcome"),
        "Model calls, by outcome (ok, error, canceled).",
    ),
    (
        "agent_model_call_duration_seconds",
        "histogram",
        ("model",),
        "Duration of one model call, retries included.",
    ),
    (
        "agent_model_tokens_total",
        "counter",
        ("model", "type"),
        "Tokens the model server reported (input, output).",
    ),
    ("agent_tool_calls_total", "counter", ("tool", "outcome"), "Tool calls, by outcome."),
    ("agent_tool_call_duration_seconds", "histogram", ("tool",), "Duration of one tool call."),
    (
        "agent_sandbox_starts_total",
        "counter",
        ("kind",),
        "Sandboxes runs got: ephemeral (/chat: a spare or a cold start), workspace (cold).",
    ),
    (
        "agent_sandbox_start_duration_seconds",
        "histogram",
        ("kind",),
        "Time from asking for a sandbox to having it.",
    ),
    ("agent_sandbox_pool_ready", "gauge", (), "Warm spares ready to be claimed."),
    (
        "agent_sandbox_pool_target",
        "gauge",
        (),
        "Warm spares the pools keep (AGENT_SANDBOX_POOL_SIZE per engine).",
    ),
    ("agent_sandbox_pool_claims_total", "counter", (), "Ephemeral sandboxes that were a warm spare."),
    (
        "agent_sandbox_pool_cold_starts_total",
        "counter",
        (),
        "Ephemeral sandboxes started cold: no spare was ready.",
    ),
    ("agent_sandbox_pool_spares_started_total", "counter", (), "Spares the pools started."),
    ("agent_sandbox_pool_spare_start_seconds_total", "counter", (), "Time spent starting spares, in all."),
    ("agent_tasks_running", "gauge", (), "Background tasks running."),
    ("agent_tasks_pending", "gauge", (), "Background tasks waiting for a running slot."),
    (
        "agent_event_store_write_duration_seconds",
        "histogram",
        (),
        "Time to store one batch of a run's events.",
    ),
    ("agent_event_store_events_total", "counter", (), "Events a run stored."),
]


class EngineMetrics:
    """The counters and histograms the engine updates, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            # prometheus_client adds _total to a counter's name itself.
            return Counter(name.removesuffix("_total"), doc, labels, registry=registry)

        def histogram(name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, labels, registry=registry, buckets=buckets)

        docs = {name: doc for name, _, _, doc in ENGINE_METRICS}
        self.runs_started = counter("agent_runs_started_total", docs["agent_runs_started_total"], ("kind",))
        self.runs_finished = counter(
            "agent_runs_finished_total", docs["agent_runs_finished_total"], ("kind", "outcome")
        )
        self.run_duration = histogram(
            "agent_run_duration_seconds", docs["agent_run_duration_seconds"], ("kind",), _SLOW_BUCKETS
        )
        self.run_iterations = histogram(
            "agent_run_iterations", docs["agent_run_iterations"], ("kind",), _ITERATION_BUCKETS
        )
        self.iterations = counter("agent_iterations_total", docs["agent_iterations_total"], ("kind",))
        self.model_calls = counter(
            "agent_model_calls_total", docs["agent_model_calls_total"], ("model", "outcome")
        )
        self.model_duration = histogram(
            "agent_model_call_duration_seconds",
            docs["agent_model_call_duration_seconds"],
            ("model",),
            _SLOW_BUCKETS,
        )
        self.model_tokens = counter(
            "agent_model_tokens_total", docs["agent_model_tokens_total"], ("model", "type")
        )
        self.tool_calls = counter(
            "agent_tool_calls_total", docs["agent_tool_calls_total"], ("tool", "outcome")
        )
        self.tool_duration = histogram(
            "agent_tool_call_duration_seconds",
            docs["agent_tool_call_duration_seconds"],
            ("tool",),
            _SLOW_BUCKETS,
        )
        self.sandbox_starts = counter(
            "agent_sandbox_starts_total", docs["agent_sandbox_starts_total"], ("kind",)
        )
        self.sandbox_start_duration = histogram(
            "agent_sandbox_start_duration_seconds",
            docs["agent_sandbox_start_duration_seconds"],
            ("kind",),
            _FAST_BUCKETS,
        )
        self.store_write_duration = histogram(
            "agent_event_store_write_duration_seconds",
            docs["agent_event_store_write_duration_seconds"],
            (),
            _FAST_BUCKETS,
        )
        self.store_events = counter("agent_event_store_events_total", docs["agent_event_store_events_total"])


class LiveCollector(Collector):
    """The values read at scrape time from the worker's live objects, once they exist.

    ``sources`` maps a metric of :data:`ENGINE_METRICS` (a gauge, or a counter its object keeps
    itself, like the pool's claims) to a function that reads it; a metric without one yet (before
    start-up, or with no pool) is left out rather than shown as 0.
    """

    def __init__(self) -> None:
        self.sources: dict[str, Callable[[], float]] = {}

    def collect(self) -> Iterator[Metric]:
        for name, kind, _, doc in ENGINE_METRICS:
            read = self.sources.get(name)
            if read is None:
                continue
            if kind == "counter":
                yield CounterMetricFamily(name.removesuffix("_total"), doc, value=read())
            else:
                yield GaugeMetricFamily(name, doc, value=read())

    def describe(self) -> Iterator[Metric]:
        return iter(())  # the names are only known once sources are set: collected at each scrape
