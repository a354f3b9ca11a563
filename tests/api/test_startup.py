"""A start-up that fails: ``agent-worker serve`` logs the real error, closes what it opened, exits 1."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.served_worker import command, free_port


async def serve_until_exit(tmp_path: Path, **env: str) -> tuple[int, str, list[dict[str, Any]]]:
    """Runs the installed command as an operator would; its exit code, raw output and JSON log lines."""
    process = await asyncio.create_subprocess_exec(
        *command(),
        "serve",
        "--port",
        str(free_port()),
        env={
            **os.environ,
            "AGENT_DATA_DIR": str(tmp_path / "data"),
            "AGENT_API_KEYS": "",
            "AGENT_LOG_FORMAT": "json",
            "AGENT_SANDBOX_POOL_SIZE": "0",
            **env,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    raw, _ = await asyncio.wait_for(process.communicate(), 120)
    output = raw.decode()
    lines = []
    for line in output.splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    assert process.returncode is not None
    return process.returncode, output, lines


def assert_failed_cleanly(output: str, lines: list[dict[str, Any]], error_type: str) -> None:
    failed = [line for line in lines if line.get("event") == "startup_failed"]
    assert len(failed) == 1, output
    assert failed[0]["error"].startswith(f"{error_type}: "), failed[0]
    # The store was opened before the failure: closing it must not end in a second, unrelated error
    # (it did: "RuntimeError: athrow(): asynchronous generator is already running").
    assert "Traceback" not in output, output
    assert "RuntimeError" not in output, output


async def test_unreachable_docker_engine_fails_start_up_cleanly(tmp_path: Path) -> None:
    code, output, lines = await serve_until_exit(tmp_path, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")

    assert code == 1
    assert_failed_cleanly(output, lines, "DockerException")


@pytest.mark.docker
async def test_sandbox_image_that_cannot_be_built_fails_start_up_cleanly(
    tmp_path: Path, empty_base: str, instance_id: str
) -> None:
    code, output, lines = await serve_until_exit(
        tmp_path,
        AGENT_SANDBOX_IMAGE=f"agent-worker-sandbox:{instance_id}",
        AGENT_SANDBOX_BASE_IMAGE=empty_base,
        AGENT_INSTANCE_ID=instance_id,
    )

    assert code == 1
    assert_failed_cleanly(output, lines, "SandboxImageError")
