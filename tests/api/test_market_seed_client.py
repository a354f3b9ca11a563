"""The client guide's REST functions and demo script, run verbatim against a served worker.

tests/seed_clients/seed_000_market.py holds the guide's code as written (only its host comes from
the environment); it runs as a separate process with ``X-Api-Key`` + ``X-Platform-User-Id`` as the
guide sends them, buying a capability another user published, then drafting a task with
``stream_ai_create`` (the scripted model's reply, the validated draft, the end line), on both engines.
"""

from __future__ import annotations

import ast
import asyncio
import json
import sys
from typing import Any

import httpx
import pytest

from tests.api.conftest import StartWorker
from tests.fakes import Reply, ScriptedModelServer
from tests.served_worker import SEED_CLIENTS, run_seed_client

pytestmark = pytest.mark.both_engines

SEED_CLIENT = SEED_CLIENTS / "seed_000_market.py"
CAPABILITY: dict[str, Any] = {
    "id": "cap_ocr_invoice_v1",
    "name": "Invoice OCR",
    "category": "ocr",
    "default_input": "Read the invoice.",
    "allowed_tools": [],
    "visibility": "public",
    "price": 25,
}
DRAFT = {
    "title": "Sales analysis report",
    "description": "Analyse last quarter's sales data and report the three fastest-growing lines",
    "required_capabilities": ["data_analysis"],
    "budget": 120.5,
    "deadline": "2099-01-31T18:00:00Z",
}
DRAFT_REPLY = "Here is the draft:\n" + json.dumps(DRAFT) + "\nGood luck!"


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return httpx.post(url, json=body, headers=headers, timeout=10).json()


async def test_the_guides_functions_and_demo_run_unchanged(
    start_worker: StartWorker, model: ScriptedModelServer
) -> None:
    base, _ = await start_worker(AGENT_API_KEYS="buyer:tok-buyer,seller:tok-seller")
    answer = Reply("Invoice total: 42.00 EUR")
    # The demo's order and the harness's, then the draft of stream_ai_create (called last).
    model.extend([answer, answer, Reply(DRAFT_REPLY)])
    seller = {"X-Api-Key": "tok-seller", "X-Platform-User-Id": "seller"}
    created = await asyncio.to_thread(_post, f"{base}/api/v1/capabilities", CAPABILITY, seller)
    assert created["code"] == 0, created

    env = {
        "UUMIT_BASE_URL": base,
        "UUMIT_API_KEY": "tok-buyer",
        "UUMIT_USER_ID": "buyer",
        "UUMIT_CAPABILITY_ID": CAPABILITY["id"],
    }
    out = await run_seed_client([sys.executable, str(SEED_CLIENT)], env, timeout=120)
    lines = out.splitlines()
    drafted = [ast.literal_eval(line) for line in lines[lines.index("ai-create:") + 1 :]]
    lines = lines[: lines.index("ai-create:")]
    assert lines[:3] == ["community-stats code: 0", "capabilities code: 0 total: 4", "feed code: 0"]
    assert lines[3].startswith("transaction code: 0 idempotency: ")
    assert lines[4].startswith("stats keys: ")
    assert lines[5] == "listed: cap_ocr_invoice_v1"
    assert lines[6] == "same transaction on retry: True amount: 25"
    assert lines[-6] == "Status update: completed"
    assert lines[-5] == "Final: completed Invoice total: 42.00 EUR"
    assert lines[-4] == "Status: completed"
    # Two orders of 25 from the signup grant of 1000; both settled, nothing frozen.
    assert lines[-3] == "wallet: 950 0 50"
    assert lines[-2] == "feed items: 1"  # the one public capability (no open tasks)
    assert lines[-1] == "unknown transaction: 404"

    # stream_ai_create prints each data: line as it parsed it: the reply's text in pieces, the
    # validated draft, the end line (not published: no task id).
    texts = [chunk for chunk in drafted if chunk["type"] == "text"]
    assert "".join(chunk["text"] for chunk in texts) == DRAFT_REPLY
    assert drafted[len(texts) :] == [
        {"type": "draft", "draft": DRAFT | {"assignee": None}},
        {"type": "end", "task_id": None},
    ]
