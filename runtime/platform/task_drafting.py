"""AI-assisted task creation: a model turns a plain-language description into a task draft.

The model is asked for the draft as one JSON object in its reply text rather than through a tool
call, so every OpenAI-compatible server works (many have no ``tool_choice``); text around the
object (a preamble, a code fence) is tolerated. What the object must contain is checked by the
caller with the same model ``POST /v1/tasks`` validates its body with, so a draft is publishable
exactly when a hand-written task would be.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from runtime.engine.model_client import ChatModel, DeltaKind, ModelRequest
from runtime.errors import InputError

__all__ = ["DraftReplyError", "draft_prompt", "find_json_object", "write_draft"]

TextHandler = Callable[[str], Awaitable[None]]


class DraftReplyError(InputError):
    """The model's reply holds no JSON object to read a draft from."""


def draft_prompt(now: float) -> str:
    """The system prompt; it names the current time so that a relative deadline can be resolved."""
    today = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
    return (
        "You turn a user's plain-language request into a task for an agent marketplace. Reply with "
        "exactly one JSON object and nothing else that contains braces. Its fields:\n"
        '- "title": a short title (at most 200 characters), in the language of the request;\n'
        '- "description": what the doer must deliver, complete enough to do the task without the '
        "request;\n"
        '- "required_capabilities": a list of at most 20 capability names (lowercase letters, digits '
        'and "_", e.g. "data_analysis", "translation");\n'
        '- "budget": the credits offered, a number greater than 0 with at most 2 decimals (the '
        "amount the request names, else a fair estimate);\n"
        '- "deadline": an ISO 8601 UTC time in the future (e.g. "2030-01-31T18:00:00Z"), or null '
        "when the request names none.\n"
        f"The current time is {today}. Use no other fields."
    )


def find_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (text before and after it ignored); None if there is none."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


async def write_draft(model: ChatModel, description: str, now: float, on_text: TextHandler) -> dict[str, Any]:
    """Ask ``model`` for a draft of ``description``; its text goes to ``on_text`` as it streams.

    Returns the reply's JSON object, unchecked; :class:`DraftReplyError` if the reply has none.
    A model server that fails raises :class:`~runtime.errors.ModelError`.
    """

    async def on_delta(kind: DeltaKind, text: str) -> None:
        if kind == "text":  # reasoning is the model's own business; the client sees the reply
            await on_text(text)

    messages = [
        {"role": "system", "content": draft_prompt(now)},
        {"role": "user", "content": description},
    ]
    turn = await model.complete(ModelRequest(messages, on_delta=on_delta))
    found = find_json_object(turn.content)
    if found is None:
        raise DraftReplyError("the model's reply holds no JSON object: no task draft to read")
    return found
