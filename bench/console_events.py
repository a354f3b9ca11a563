"""The console's task page on a task of ~10,000 events, in headless Chromium (Debian's package).

    AGENT_SANDBOX_IMAGE=agent-worker-sandbox:test .venv/bin/python bench/console_events.py [--iterations 40]

A real ``agent-worker serve`` process (anonymous, loopback) and a scripted model: each iteration
streams ~960 characters of text in 4-character chunks (~240 ``text_chunk`` events) and makes one
``execute_bash`` call whose output streams in; the last reply streams 640 more characters. With the
default 40 iterations that is ~10,000 events.

Two scenarios, each with two renderers of the same page:

- open: the task has finished; the page is loaded and replays every event from its SSE stream.
- live: the page is opened as the task starts (the model waits 2 ms between chunks, so events
  arrive over seconds) and follows it to the end.

Renderers: ``batched`` is the console as shipped (events queued, applied once per animation frame
within a 6 ms budget); ``per-event`` is the baseline, the same timeline code patched in the page
to apply each event (and keep the newest output in view) as it arrives, i.e. what a naive
renderer does. Figures per run: time until every event is on the page (from navigation start;
live: also the lag after the task's final event was stored), the page's long tasks (> 50 ms, the
Long Tasks API: count, total, longest) and the animation-frame gaps while events were rendered
(p95, longest, frames over 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls
from tests.served_worker import command, free_port, wait_healthy

TEXT = "The quick brown fox jumps over the lazy dog; " * 21  # ~960 characters per iteration
# Output that streams as several tool_output events (the executor coalesces per ~50 ms).
TOOL_COMMAND = "for i in $(seq 1 5); do seq 1 200; sleep 0.06; done"

# Installed before the page's scripts: long tasks, frame gaps, and the moment the timeline holds
# every event (a final card and nothing queued).
INSTRUMENT = """
window.__bench = {longTasks: [], frames: [], done: null, firstEvent: null};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__bench.longTasks.push(e.duration);
}).observe({type: "longtask", buffered: true});
(function () {
  let last = null;
  function frame(now) {
    const b = window.__bench;
    const timeline = document.getElementById("timeline");
    if (timeline && b.firstEvent === null && timeline.childElementCount > 0) b.firstEvent = now;
    if (b.firstEvent !== null && b.done === null && last !== null) b.frames.push(now - last);
    if (b.done === null && timeline && timeline.querySelector(":scope > .final")
        && timeline.getAttribute("aria-busy") === "false") {
      b.done = now;
      b.doneWall = performance.timeOrigin + now;
      b.events = Number(document.getElementById("task-events").textContent);
    }
    last = now;
    requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);
})();
"""

# The baseline: the same Timeline, each event applied at once (no queue, no frame budget).
PER_EVENT = """
document.addEventListener("DOMContentLoaded", () => {
  AW.Timeline.prototype.push = function (event) { this.apply(event); this.afterFrame(); };
});
"""


def script(iterations: int, chunk_delay: float) -> list[Any]:
    turns: list[Any] = [
        ToolCalls([Call("execute_bash", {"command": TOOL_COMMAND})], content=TEXT, chunk_delay=chunk_delay)
        for _ in range(iterations)
    ]
    turns.append(Reply(TEXT[:640], chunk_delay=chunk_delay))
    return turns


async def start_task(session: aiohttp.ClientSession, base: str, iterations: int) -> str:
    body = {"message": "bench: a long run", "max_iterations": iterations + 1}
    async with session.post(f"{base}/api/v1/messages", json=body) as r:
        answer = await r.json()
        assert r.status == 202, answer
        return str(answer["task_id"])


async def wait_finished(session: aiohttp.ClientSession, base: str, task: str) -> tuple[int, float]:
    """The task's event count and the time its final event was stored."""
    offset, last = 0, 0.0
    while True:
        params = {"from": offset, "wait": 25}
        async with session.get(f"{base}/api/v1/tasks/{task}", params=params) as r:
            data = (await r.json())["data"]
        offset = data["next_offset"]
        if data["events"]:
            last = float(data["events"][-1]["timestamp"])
        if data["status"] not in ("pending", "running"):
            assert data["status"] == "completed", data
            return offset, last  # the last event is the final one


def pct(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure_page(browser: Browser, url: str, per_event: bool) -> dict[str, Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.add_init_script(INSTRUMENT)
    if per_event:
        await page.add_init_script(PER_EVENT)
    await page.goto(url)
    # Polled from here: wait_for_function's string predicate would be an eval the page's CSP refuses.
    for _ in range(3600):  # up to 15 minutes
        if await page.evaluate("window.__bench.done") is not None:
            break
        await asyncio.sleep(0.25)
    else:
        raise TimeoutError(f"{url} did not render its events in 15 minutes")
    result: dict[str, Any] = await page.evaluate("window.__bench")
    await context.close()
    return result


def row(label: str, bench: dict[str, Any], final_at: float | None) -> str:
    long_tasks, frames = bench["longTasks"], bench["frames"]
    lag = f"{bench['doneWall'] / 1000 - final_at:8.2f} s" if final_at is not None else "       —"
    return (
        f"| {label} | {bench['events']} | {bench['done'] / 1000:.2f} s | {lag} | {len(long_tasks)} | "
        f"{sum(long_tasks):.0f} ms | {max(long_tasks, default=0):.0f} ms | {pct(frames, 0.95):.0f} ms | "
        f"{max(frames, default=0):.0f} ms | {sum(1 for f in frames if f > 50)} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=40, help="tool-call iterations (~246 events each)")
    parser.add_argument("--chunk-delay", type=float, default=0.002, help="seconds between chunks, live runs")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no chromium binary (apt-get install chromium)")
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}")
    workdir = Path(tempfile.mkdtemp(prefix="aw-console-bench-"))
    async with ScriptedModelServer() as model, async_playwright() as playwright:
        port = free_port()
        env = {
            **os.environ,
            "OPENAI_BASE_URL": model.base_url,
            "AGENT_MODEL": "scripted-model",
            "AGENT_DATA_DIR": str(workdir),
            "AGENT_API_KEYS": "",
            "AGENT_SANDBOX_POOL_SIZE": "0",
            "AGENT_LOG_LEVEL": "warning",
            "AGENT_RATE_LIMIT_PER_MINUTE": "0",
        }
        env.pop("AGENT_DATABASE_URL", None)
        log = (workdir / "worker.log").open("wb")
        worker = await asyncio.create_subprocess_exec(
            *command(), "serve", "--port", str(port), env=env, stdout=log, stderr=log
        )
        base = f"http://127.0.0.1:{port}"
        browser = await playwright.chromium.launch(executable_path=chromium)
        print(f"browser: {browser.version} headless, viewport 1280x900")
        rows = []
        try:
            await wait_healthy(base, worker)
            async with aiohttp.ClientSession() as session:
                model.extend(script(args.iterations, 0.0))
                finished = await start_task(session, base, args.iterations)
                events, _ = await wait_finished(session, base, finished)
                print(f"open: a finished task of {events} events")
                for per_event in (False, True):
                    bench = await measure_page(browser, f"{base}/console/tasks/{finished}", per_event)
                    rows.append(row(f"open, {'per-event' if per_event else 'batched'}", bench, None))
                for per_event in (False, True):
                    model.extend(script(args.iterations, args.chunk_delay))
                    task = await start_task(session, base, args.iterations)
                    page = asyncio.create_task(
                        measure_page(browser, f"{base}/console/tasks/{task}", per_event)
                    )
                    events, final_at = await wait_finished(session, base, task)
                    bench = await page
                    print(f"live ({'per-event' if per_event else 'batched'}): {events} events")
                    rows.append(row(f"live, {'per-event' if per_event else 'batched'}", bench, final_at))
        finally:
            await browser.close()
            worker.terminate()
            await worker.wait()
            log.close()
    print()
    print(
        "| scenario, renderer | events | all rendered (from navigation) | after the final event | "
        "long tasks | long-task total | longest task | frame gap p95 | longest frame gap | frames > 50 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for line in rows:
        print(line)
    print(json.dumps({"iterations": args.iterations, "chunk_delay": args.chunk_delay, "time": time.time()}))


if __name__ == "__main__":
    asyncio.run(main())
