"""The seeds' own client code, run unchanged against a served worker."""

from __future__ import annotations

import sys

from tests.api.conftest import StartWorker
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls
from tests.served_worker import SEED_CLIENTS, run_seed_client

ANSWER = "终末地是一款即时策略 RPG。"


def script(model: ScriptedModelServer) -> None:
    model.extend(
        [
            ToolCalls([Call("execute_bash", {"command": "sleep 1; echo researched"})]),
            Reply(ANSWER, chunk_delay=0.05),
        ]
    )


async def test_seed_002_curl_flow(start_worker: StartWorker, model: ScriptedModelServer) -> None:
    base, _ = await start_worker(AGENT_API_KEYS="seed:tok-seed")
    script(model)

    out = await run_seed_client(
        ["bash", str(SEED_CLIENTS / "seed_002_flow.sh")], {"BASE_URL": base, "TOKEN": "tok-seed"}
    )

    # The seed's text printer cannot work with any server: `echo "$RESP" | python3 - <<'PY'` gives
    # python's stdin to the heredoc (the program), not to the response. The flow itself must.
    assert '"workspace_id":"ws1"' in out
    assert "CONV=conv_" in out and "TASK=" in out
    assert out.endswith("status=completed\n")
    model.assert_script_consumed()


async def test_seed_002_python_flow(start_worker: StartWorker, model: ScriptedModelServer) -> None:
    base, _ = await start_worker(AGENT_API_KEYS="seed:tok-seed")
    script(model)

    out = await run_seed_client(
        [sys.executable, str(SEED_CLIENTS / "seed_002_flow.py")], {"BASE_URL": base, "TOKEN": "tok-seed"}
    )

    assert out.endswith(f"{ANSWER}\nstatus: completed\n")
    model.assert_script_consumed()
