"""Every goal figure of issue 5 next to its baseline, measured in one run on this machine.

    AGENT_SANDBOX_IMAGE=agent-worker-sandbox:test .venv/bin/python bench/run_all.py [--quick]

Runs, one after the other (each in its own process, so one's containers and threads do not weigh
on the next): ``sandbox_latency.py`` (bash and Python round trips vs raw ``docker exec``),
``sandbox_ready.py`` (pool hit vs cold start, idle sandbox memory) and ``chat_load.py`` (``/chat``
overhead vs its raw parts, concurrent ``/chat`` runs with peak worker RSS and per-sandbox memory;
then again with the warm pool off, for contrast).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# /chat with a cold sandbox per run, for contrast
POOL_OFF = ["--concurrent", "0", "--env", "AGENT_SANDBOX_POOL_SIZE=0"]
FULL = [
    ("sandbox_latency.py", ["--runs", "100", "--starts", "10"]),
    ("sandbox_ready.py", ["--runs", "20", "--idle", "3"]),
    ("chat_load.py", ["--runs", "30", "--concurrent", "50"]),
    ("chat_load.py", ["--runs", "10", *POOL_OFF]),
]
QUICK = [
    ("sandbox_latency.py", ["--runs", "20", "--starts", "3"]),
    ("sandbox_ready.py", ["--runs", "5", "--idle", "1"]),
    ("chat_load.py", ["--runs", "5", "--concurrent", "10"]),
    ("chat_load.py", ["--runs", "3", *POOL_OFF]),
]


def main(quick: bool) -> int:
    failed = []
    for script, arguments in QUICK if quick else FULL:
        print(f"\n== {script} {' '.join(arguments)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *arguments], check=False).returncode:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, 10 concurrent runs")
    sys.exit(main(parser.parse_args().quick))
