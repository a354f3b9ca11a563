"""OpenTelemetry: the span names and attributes we use, and the exporting tracer provider.

Attribute names follow the OpenTelemetry semantic conventions (GenAI for runs, model and tool
calls; HTTP for requests), written out here rather than imported from the package's
``_incubating`` modules, whose names may move between its releases.

Traces are off unless the operator points ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the signal's own
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) at a collector: the settings derive the traces URL as the
specification says, and :func:`otlp_tracer_provider` exports every span there over OTLP/HTTP in
batches, from a background thread. The exporter and the resource read the other standard
variables themselves (``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_EXPORTER_OTLP_TIMEOUT``,
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``...), so a collector set up for other services
works unchanged. The provider is the app's, never installed globally: a test process builds many
apps.
"""

from __future__ import annotations

from importlib.metadata import version

from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

__all__ = ["INSTRUMENTATION", "otlp_tracer_provider"]

INSTRUMENTATION = "agent-worker"

# GenAI semantic conventions
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
AGENT_NAME = "gen_ai.agent.name"
CONVERSATION_ID = "gen_ai.conversation.id"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
ERROR_TYPE = "error.type"
# ours, where the conventions have nothing
RUN_ID = "agent_worker.run.id"
RUN_KIND = "agent_worker.run.kind"
ITERATIONS = "agent_worker.run.iterations"
TOOL_OUTCOME = "agent_worker.tool.outcome"
EXIT_CODE = "process.exit.code"


def otlp_tracer_provider(endpoint: str) -> TracerProvider:
    """A provider exporting to ``endpoint`` (the traces URL) over OTLP/HTTP in protobuf."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    detected = Resource.create({SERVICE_VERSION: version("agent-worker")})
    unnamed = str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service")
    # OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) wins over our default name.
    resource = detected.merge(Resource({SERVICE_NAME: INSTRUMENTATION})) if unnamed else detected
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider
