"""One-shot ``/chat`` runs: a new run, an ephemeral sandbox, the whole event log in the answer."""

from __future__ import annotations

import uuid

import structlog

from runtime.engine.events import Event, RunStarted
from runtime.engine.loop import LoopConfig, RunOutcome, run_agent
from runtime.engine.model_client import ChatModel
from runtime.engine.runs import LazySandbox, StoreSink
from runtime.store import Store
from runtime.telemetry import Telemetry, no_telemetry
from sandbox.base import SandboxFactory, SandboxRequest

__all__ = ["ChatRunner"]

log = structlog.get_logger(__name__)


class _RecordingSink(StoreSink):
    """A :class:`StoreSink` that also keeps the run's events, for an answer built from them."""

    def __init__(self, store: Store, run_id: str, telemetry: Telemetry) -> None:
        super().__init__(store, run_id, telemetry)
        self.events: list[Event] = []

    async def emit(self, event: Event) -> None:
        self.events.append(event)
        await super().emit(event)


class ChatRunner:
    """Runs one-shot ``/chat`` requests: a new run, an ephemeral sandbox, the full event log back."""

    def __init__(
        self,
        store: Store,
        model: ChatModel,
        sandboxes: SandboxFactory,
        config: LoopConfig,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._store = store
        self._model = model
        self._sandboxes = sandboxes
        self._config = config
        self._telemetry = telemetry or no_telemetry()

    async def run(self, owner: str, message: str, max_iterations: int) -> tuple[str, RunOutcome, list[Event]]:
        """The run's id, its outcome and its events: those stored in its log, as they were stored."""
        run_id = str(uuid.uuid4())
        with structlog.contextvars.bound_contextvars(run_id=run_id):
            await self._store.create_run(run_id, owner, kind="chat")
            async with _RecordingSink(self._store, run_id, self._telemetry) as sink:
                await sink.emit(
                    RunStarted(message=message, max_iterations=max_iterations, model=self._model.name)
                )
                messages = [
                    {"role": "system", "content": self._config.system_prompt},
                    {"role": "user", "content": message},
                ]
                request = SandboxRequest(owner=owner, run_id=run_id)
                # The run's execute_python calls share one interpreter; the sandbox ends with the run.
                tools = self._config.tools.model_copy(update={"python_session": run_id})
                with self._telemetry.run("chat", run_id, self._model.name) as observer:
                    async with LazySandbox(lambda: self._sandboxes.open(request)) as sandbox:
                        outcome = await run_agent(
                            messages,
                            model=self._model,
                            get_sandbox=sandbox,
                            config=self._config.model_copy(update={"tools": tools}),
                            max_iterations=max_iterations,
                            sink=sink,
                            observer=observer,
                        )
            await self._store.set_status(run_id, "failed" if outcome.error else "completed", outcome.error)
            log.info(
                "run_finished",
                iterations=outcome.iterations,
                error=outcome.error,
                total_tokens=outcome.usage.total_tokens,
            )
            return run_id, outcome, sink.events
