"""Showing a task's events in a terminal (rich): the model's text as it streams, each tool call
with a spinner and the tail of its output, and a summary line at the end.

On a terminal the spinner is redrawn in place; piped, only the lasting lines are written, so a log
of ``agent-worker run`` reads the same as the screen without the animation.
"""

from __future__ import annotations

import json
from collections import deque

from rich.console import Console
from rich.status import Status
from rich.text import Text

from client._models import TaskEvent, TaskUsage

__all__ = ["LiveTask", "Outcome"]

TAIL_LINES = 6


class Outcome:
    """How the task ended, as far as the events said."""

    def __init__(self) -> None:
        self.status: str | None = None  # completed | failed | canceled, once the final event came
        self.usage = TaskUsage()
        self.started: float | None = None
        self.ended: float | None = None
        self.iterations = 0
        self.error: str | None = None
        self.response = ""


class LiveTask:
    """Renders one task's events, in order, on ``console``."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.outcome = Outcome()
        self._at_line_start = True
        self._status: Status | None = None
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._call = ""

    def show(self, event: TaskEvent) -> None:
        data, kind = event.data, event.type
        if self.outcome.started is None:
            self.outcome.started = event.timestamp
        if kind == "text_chunk":
            self._text(str(data.get("content", "")))
        elif kind == "model_response":
            usage = TaskUsage.model_validate(data.get("usage") or {})
            self.outcome.usage = _add(self.outcome.usage, usage)
            self.outcome.iterations = max(self.outcome.iterations, int(data.get("iteration", 0)))
        elif kind == "tool_call":
            self._tool_started(str(data.get("name", "")), str(data.get("arguments", "")))
        elif kind == "tool_output":
            self._tool_output(str(data.get("content", "")))
        elif kind == "tool_result":
            self._tool_finished(data)
        elif event.is_final:
            self._finished(event)

    def close(self) -> None:
        """Stop a spinner still turning (the follow was interrupted)."""
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _text(self, content: str) -> None:
        if content:
            self.console.print(Text(content), end="", soft_wrap=True)
            self._at_line_start = content.endswith("\n")

    def _new_line(self) -> None:
        if not self._at_line_start:
            self.console.print()
            self._at_line_start = True

    def _tool_started(self, name: str, arguments: str) -> None:
        self._new_line()
        self.close()
        self._tail.clear()
        self._call = f"{name} {_source(arguments)}"
        self._status = self.console.status(Text(f"running {self._call}"))
        self._status.start()

    def _tool_output(self, content: str) -> None:
        self._tail.extend(line for line in content.splitlines() if line.strip())
        if self._status is not None:
            self._status.update(Text("\n".join([f"running {self._call}", *self._tail])))

    def _tool_finished(self, data: dict[str, object]) -> None:
        self.close()
        if data.get("timed_out"):
            mark, how = "✗", "timed out"
        elif data.get("success"):
            mark, how = "✓", f"exit {data.get('returncode', 0)}"
        else:
            mark, how = "✗", str(data.get("error") or f"exit {data.get('returncode')}")
        duration = float(str(data.get("duration") or 0))
        style = "green" if mark == "✓" else "red"
        self.console.print(Text(f"{mark} {self._call} ({how}, {duration:.2f} s)", style=style))
        output = "\n".join(str(data.get(key) or "") for key in ("stdout", "stderr")).strip("\n")
        for line in output.splitlines()[-TAIL_LINES:]:
            self.console.print(Text(f"  {line}", style="dim"))
        self._at_line_start = True

    def _finished(self, event: TaskEvent) -> None:
        self.close()
        self._new_line()
        outcome, data = self.outcome, event.data
        outcome.status = event.type.removeprefix("run_")
        outcome.ended = event.timestamp
        outcome.iterations = int(data.get("iterations", outcome.iterations))
        outcome.response = str(data.get("response") or "")
        if "usage" in data:  # run_canceled has none: the model calls' sum stands
            outcome.usage = TaskUsage.model_validate(data["usage"])
        outcome.error = str(data.get("error") or data.get("reason") or "") or None
        seconds = (outcome.ended or 0) - (outcome.started or outcome.ended or 0)
        usage = outcome.usage
        line = (
            f"{outcome.status} · {outcome.iterations} iteration{'s' if outcome.iterations != 1 else ''} · "
            f"{usage.total_tokens:,} tokens ({usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} "
            f"completion) · {seconds:.1f} s"
        )
        style = {"completed": "bold green", "failed": "bold red"}.get(outcome.status, "bold yellow")
        self.console.print(Text(line, style=style))
        if outcome.error:
            self.console.print(Text(outcome.error, style="red"))


def _add(a: TaskUsage, b: TaskUsage) -> TaskUsage:
    return TaskUsage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
    )


def _source(arguments: str) -> str:
    """The command or code of a tool call, on one short line."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = arguments
    if isinstance(parsed, dict):
        parsed = parsed.get("command") or parsed.get("code") or arguments
    first = str(parsed).strip().splitlines()[0] if str(parsed).strip() else ""
    return first if len(first) <= 80 else first[:77] + "..."
