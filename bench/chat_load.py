"""``/chat`` figures against a real ``agent-worker serve`` process and an instant scripted model.

    AGENT_SANDBOX_IMAGE=agent-worker-sandbox:test .venv/bin/python bench/chat_load.py [--runs 30] [--concurrent 50]

1. ``/chat`` with one tool call, p50, next to its baseline measured in the same run: the two model
   calls made directly with the ``openai`` client (a tool-call turn and a final reply, streamed as
   the worker asks for them) plus the same tool call in a ready sandbox. The difference is what the
   worker adds: HTTP, the event log, the loop, and getting (and letting go of) a sandbox.
2. ``--concurrent`` ``/chat`` runs at once: how many succeed, the wall time, the worker's peak RSS
   (``VmHWM``) and each sandbox's memory (its cgroup's ``memory.usage_in_bytes``, read by the run's
   own tool call).

Extra ``--env NAME=VALUE`` pairs go to the worker (e.g. ``--env AGENT_SANDBOX_POOL_SIZE=0``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import docker
from openai import AsyncOpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.engine.tools import tool_schemas
from sandbox.base import SandboxLimits, SandboxRequest
from sandbox.docker_engine.backend import DockerSandboxFactory
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls
from tests.fakes.model_server import ChatRequest, Turn
from tests.served_worker import command, free_port, wait_healthy

# The run's one tool call reads its own container's memory use (cgroup v1, then v2).
COMMAND = "cat /sys/fs/cgroup/memory/memory.usage_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.current"


class ReactiveModel(ScriptedModelServer):
    """Answers by the conversation, so concurrent runs cannot take each other's turns: a tool call
    first, the final reply once the tool's result is in."""

    def __init__(self) -> None:
        super().__init__()
        self.add(Reply())  # a placeholder that keeps the script from running out

    async def _answer(self, request: Any, chat: ChatRequest, turn: Turn) -> Any:
        self.add(turn)
        answer: Turn = (
            Reply("done")
            if chat.messages[-1].get("role") == "tool"
            else ToolCalls([Call("execute_bash", {"command": COMMAND})])
        )
        return await super()._answer(request, chat, answer)


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def peak_rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Baseline:
    """The parts of a one-tool ``/chat`` run done directly: the two model calls (a tool-call turn
    and a final reply, streamed with the ``openai`` client as the worker asks for them) and the
    same tool call in a sandbox that is already up."""

    def __init__(self, base_url: str, image: str) -> None:
        self._base_url = base_url
        self._image = image
        self._stack = AsyncExitStack()
        self._tools: Any = tool_schemas(("execute_bash", "execute_python"))
        first = [{"role": "system", "content": "bench"}, {"role": "user", "content": "go"}]
        call = {"id": "call_1", "type": "function", "function": {"name": "execute_bash", "arguments": "{}"}}
        self._turns = (
            first,
            [
                *first,
                {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "exit code: 0"},
            ],
        )

    async def __aenter__(self) -> Baseline:
        client = docker.from_env()
        self._stack.callback(client.close)
        factory = DockerSandboxFactory(
            client, self._image, SandboxLimits(), instance_id=f"bench-{uuid.uuid4().hex[:8]}"
        )
        self._stack.push_async_callback(factory.reap_orphans)
        self._sandbox = await self._stack.enter_async_context(
            factory.open(SandboxRequest(owner="bench", run_id="tool"))
        )
        self._model = await self._stack.enter_async_context(
            AsyncOpenAI(api_key="bench", base_url=self._base_url, max_retries=0)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def round(self) -> tuple[float, float, float]:
        """Seconds for the tool-call turn, the tool call and the final reply, in a run's order."""
        first = await self._model_call(self._turns[0])
        tool = await self._tool_call()
        return first, tool, await self._model_call(self._turns[1])

    async def _model_call(self, messages: Any) -> float:
        started = time.perf_counter()
        stream = await self._model.chat.completions.create(
            model="scripted-model",
            messages=messages,
            tools=self._tools,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _ in stream:
            pass
        return time.perf_counter() - started

    async def _tool_call(self) -> float:
        started = time.perf_counter()
        result = await self._sandbox.run_bash(COMMAND, 10)
        assert result.exit_code == 0, result
        return time.perf_counter() - started


async def chat(session: aiohttp.ClientSession, base: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    async with session.post(f"{base}/chat", json={"message": "go", "max_iterations": 3}) as response:
        body = await response.json()
        assert response.status == 200, body
    return time.perf_counter() - started, body


async def main(runs: int, concurrent: int, gap: float, extra_env: dict[str, str]) -> None:
    image = os.environ.get("AGENT_SANDBOX_IMAGE", "agent-worker-sandbox:test")
    workdir = Path(tempfile.mkdtemp(prefix="aw-chat-bench-"))
    async with ReactiveModel() as model, Baseline(model.base_url, image) as baseline:
        port = free_port()
        env = {
            **os.environ,
            "OPENAI_BASE_URL": model.base_url,
            "AGENT_MODEL": "scripted-model",
            "AGENT_DATA_DIR": str(workdir / "data"),
            "AGENT_API_KEYS": "",
            "AGENT_LOG_LEVEL": "warning",
            "AGENT_RATE_LIMIT_PER_MINUTE": "0",
            "AGENT_RATE_LIMIT_CONCURRENCY": "0",
            "AGENT_SANDBOX_IMAGE": image,
            "AGENT_SANDBOX_BASE_IMAGE": os.environ.get(
                "AGENT_SANDBOX_BASE_IMAGE", "agent-worker-base:bookworm"
            ),
            **extra_env,
        }
        worker = await asyncio.create_subprocess_exec(
            *command(), "serve", "--port", str(port), env=env, stderr=asyncio.subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            timeout = aiohttp.ClientTimeout(total=600)
            await wait_healthy(base, worker)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                # Rounds of the baseline's parts and a /chat run, each after the same idle gap (in
                # which the pool refills and the last run's sandbox is removed): a process that has
                # been idle answers slower than one in a tight loop, so both sides pay the same.
                parts: list[tuple[float, float, float]] = []
                sequential: list[float] = []
                for i in range(3 + runs):
                    await asyncio.sleep(gap)
                    measured = await baseline.round()
                    await asyncio.sleep(gap)
                    elapsed, body = await chat(session, base)
                    assert body["error"] is None, body
                    if i >= 3:
                        parts.append(measured)
                        sequential.append(elapsed)
                rss_before, _ = peak_rss_mb(worker.pid)
                started = time.perf_counter()
                outcomes = await asyncio.gather(
                    *(chat(session, base) for _ in range(concurrent)), return_exceptions=True
                )
                wall = time.perf_counter() - started
                _, peak = peak_rss_mb(worker.pid)
        finally:
            worker.terminate()
            await worker.wait()
            shutil.rmtree(workdir, ignore_errors=True)
    succeeded, memory = 0, []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            continue
        _, body = outcome
        results = [entry["result"] for entry in body["logs"] if "result" in entry]
        if body["error"] is None and results and results[0]["success"]:
            succeeded += 1
            memory.append(int(results[0]["stdout"]) / 2**20)
    model_first, tool, model_second = ([part[n] for part in parts] for n in range(3))
    total = p50_ms(model_first) + p50_ms(model_second) + p50_ms(tool)
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores; worker env {extra_env or '{}'}"
    )
    print(f"model call, tool-call turn (openai client), p50          {p50_ms(model_first):8.2f} ms")
    print(f"model call, final reply (openai client), p50            {p50_ms(model_second):8.2f} ms")
    print(f"tool call in a ready sandbox, p50                       {p50_ms(tool):8.2f} ms")
    print(f"/chat, one tool call, instant model, p50 (n={runs})        {p50_ms(sequential):8.2f} ms")
    print(f"  baseline: sum of the three above                      {total:8.2f} ms")
    print(f"  overhead of the worker (goal <= 10 ms)                {p50_ms(sequential) - total:8.2f} ms")
    if not concurrent:
        return
    print(f"{concurrent} concurrent /chat: {succeeded}/{concurrent} succeeded in {wall:.1f} s")
    print(f"  worker RSS before the burst / peak (VmHWM)            {rss_before:.1f} MB / {peak:.1f} MB")
    if memory:
        print(
            f"  per-sandbox memory during its tool call, median / max {statistics.median(memory):.1f} MB / "
            f"{max(memory):.1f} MB"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between the sequential runs")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the worker")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.concurrent, args.gap, dict(item.split("=", 1) for item in args.env)))
