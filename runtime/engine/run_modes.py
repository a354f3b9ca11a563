"""``run_mode`` of a message: how hard the model is asked to think.

| mode | reasoning_effort sent | system prompt |
|---|---|---|
| fast | none (the model's default) | as configured |
| thinking | medium | as configured |
| deep | high | plus an instruction to plan, verify and check results before answering |

A server that refuses ``reasoning_effort`` is asked without it (see the model client), so every
mode works with every model; reasoning the server streams becomes ``reasoning_chunk`` events.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

__all__ = ["RUN_MODES", "RunMode", "RunModeName"]

RunModeName = Literal["fast", "thinking", "deep"]


class RunMode(BaseModel):
    reasoning_effort: str | None
    prompt_addendum: str = ""


RUN_MODES: dict[str, RunMode] = {
    "fast": RunMode(reasoning_effort=None),
    "thinking": RunMode(reasoning_effort="medium"),
    "deep": RunMode(
        reasoning_effort="high",
        prompt_addendum=(
            "Work deliberately: make a plan, carry it out step by step, check every result against "
            "the task, and verify your answer in the sandbox before you give it."
        ),
    ),
}
