"""A :class:`~runtime.engine.model_client.ChatModel` whose calls are timed, counted and traced.

The model registry hands these out, so every model call (a run's, a task draft's) is measured in
one place. One call is what the loop sees: the client's retries and their back-off are inside it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import SpanKind, Status, StatusCode

from runtime.engine.model_client import ChatModel, ModelRequest, ModelTurn
from runtime.telemetry import tracing as attr
from runtime.telemetry.core import Telemetry

__all__ = ["ObservedModel"]


class ObservedModel:
    """``model`` with its calls measured; ``base_url`` names the server in spans."""

    def __init__(self, model: ChatModel, telemetry: Telemetry, base_url: str | None) -> None:
        self._model = model
        self._telemetry = telemetry
        server = urlsplit(base_url or "https://api.openai.com/v1")
        self._attributes: dict[str, Any] = {
            attr.OPERATION: "chat",
            attr.PROVIDER: "openai",  # the wire format every configured server speaks
            attr.REQUEST_MODEL: model.name,
            "server.address": server.hostname or "",
        }
        if server.port is not None:
            self._attributes["server.port"] = server.port
        metrics = telemetry.metrics
        self._duration = metrics.model_duration.labels(model.name)
        self._input_tokens = metrics.model_tokens.labels(model.name, "input")
        self._output_tokens = metrics.model_tokens.labels(model.name, "output")

    @property
    def name(self) -> str:
        return self._model.name

    async def complete(self, request: ModelRequest) -> ModelTurn:
        outcome = "error"
        started = time.monotonic()
        with self._telemetry.span(f"chat {self.name}", self._attributes, SpanKind.CLIENT) as span:
            try:
                turn = await self._model.complete(request)
                outcome = "ok"
            except asyncio.CancelledError:
                outcome = "canceled"
                raise
            except BaseException as e:
                span.set_attribute(attr.ERROR_TYPE, type(e).__qualname__)
                span.set_status(Status(StatusCode.ERROR, str(e)))
                raise
            finally:
                self._duration.observe(time.monotonic() - started)
                self._telemetry.metrics.model_calls.labels(self.name, outcome).inc()
            usage = turn.usage
            self._input_tokens.inc(usage.prompt_tokens)
            self._output_tokens.inc(usage.completion_tokens)
            span.set_attribute(attr.INPUT_TOKENS, usage.prompt_tokens)
            span.set_attribute(attr.OUTPUT_TOKENS, usage.completion_tokens)
            span.set_attribute(attr.FINISH_REASONS, [turn.finish_reason])
            return turn
