"""What a hostile model can make the sandbox do through ``/chat``, and that the worker shrugs it off.

Each case runs one abusive command, then ``echo alive`` in the same run (the sandbox's executor
survived it), and checks: the answer is a normal run result whose tool result says what happened
(never an internal error), the worker is healthy, a fresh ``/chat`` works, and no container is
left but the pool's spares. Limits are small so that every case ends within seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
import pytest
from aiohttp.test_utils import TestClient

from api.web.keys import SANDBOX_POOL
from sandbox.docker_engine.backend import LABEL_POOL
from tests.api.conftest import ClientMaker
from tests.conftest import instance_containers
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls
from tests.sandbox.test_pool import eventually

pytestmark = pytest.mark.docker

Client = TestClient[Any, Any]
Result = dict[str, Any]

TOOL_TIMEOUT = 3.0
PIDS = 64
# The tmpfs mounts take all the memory SandboxLimits lets them (all but PROCESS_RESERVE_MB, with an
# eighth on top for their files' metadata): full mounts then leave processes only that much, the
# edge where the executor could be the OOM victim.
MEMORY_MB, TMP_MB, WORKSPACE_MB = 256, 32, 75  # and /dev/shm's default 64: 171 + 21 = 192
FILL_ALL = " ; ".join(
    f"dd if=/dev/zero of={m}/fill bs=1M count=1024" for m in ("/tmp", "/workspace", "/dev/shm")
)
HOG = "python3 -c 'x = []\nwhile True: x.append(bytearray(10**7))'"

# Every writable mount of a /chat sandbox (sandbox/docker_engine/backend.py): the root is read-only.
WRITABLE_MOUNTS = ["/tmp", "/workspace", "/dev/shm"]

PRIVILEGE_PROBES = """
sudo -n id -u 2>/dev/null || echo refused:sudo
su -c 'id -u' root </dev/null 2>/dev/null || echo refused:su
mount -t tmpfs none /mnt 2>/dev/null || echo refused:mount
(echo 1 > /proc/sys/kernel/sysrq) 2>/dev/null || echo refused:proc-sys
(echo 0 > /proc/sysrq-trigger) 2>/dev/null || echo refused:sysrq-trigger
touch /workspace/f && (chown root /workspace/f 2>/dev/null || echo refused:chown)
cp /bin/bash /workspace/sh && chmod u+s /workspace/sh && /workspace/sh -p -c 'echo euid:$(id -u)'
cp /bin/bash /tmp/sh && chmod u+s /tmp/sh && /tmp/sh -p -c 'echo tmp-euid:$(id -u)'
echo uid:$(id -u)
"""


def failed(result: Result) -> bool:
    return result["success"] is False


def timed_out(result: Result) -> bool:
    return result.get("timed_out") is True


def out_of_space_or_memory(result: Result) -> bool:
    return "No space left on device" in result["stderr"] or result.get("oom_killed") is True


def out_of_memory(result: Result) -> bool:
    return result.get("oom_killed") is True or "MemoryError" in result["stderr"]


def truncated(result: Result) -> bool:
    return result.get("truncated_bytes", 0) > 0


def read_only_root(result: Result) -> bool:
    # /etc/passwd is root's: uid 1000 is refused before the read-only mount is even asked.
    errors = [
        ("/usr/bin/evil", "Read-only"),
        ("/etc/passwd", "Permission denied"),
        ("/opt/evil", "Read-only"),
    ]
    lines = result["stderr"].splitlines()
    return failed(result) and all(any(p in line and e in line for line in lines) for p, e in errors)


def privileges_refused(result: Result) -> bool:
    refusals = ["sudo", "su", "mount", "proc-sys", "sysrq-trigger", "chown"]
    lines = result["stdout"].split()
    return (
        all(f"refused:{r}" in lines for r in refusals)
        and {"uid:1000", "euid:1000"} <= set(lines)  # the setuid copy runs, as the user
        and "tmp-euid:0" not in lines
    )


def daemons_started(result: Result) -> bool:
    return "started" in result["stdout"]


@dataclass(frozen=True)
class Abuse:
    command: str
    says_what_happened: Callable[[Result], bool]


ABUSES: dict[str, Abuse] = {
    "fork-bomb": Abuse(":(){ :|:& };:", lambda r: "Resource temporarily unavailable" in r["stderr"]),
    "memory-hog": Abuse(HOG, lambda r: failed(r) and out_of_memory(r)),
    **{
        f"disk-fill-{mount.strip('/').replace('/', '-')}": Abuse(
            f"dd if=/dev/zero of={mount}/fill bs=1M count=1024", out_of_space_or_memory
        )
        for mount in WRITABLE_MOUNTS
    },
    "disk-fill-every-mount": Abuse(FILL_ALL, lambda r: r["stderr"].count("No space left on device") == 3),
    "disk-fill-every-mount-then-memory-hog": Abuse(
        f"{FILL_ALL} 2>/dev/null; {HOG}", lambda r: failed(r) and out_of_memory(r)
    ),
    "output-flood": Abuse("head -c 50000000 /dev/zero | tr '\\0' x; seq 1 2000000 >&2", truncated),
    "hang": Abuse("sleep 600", timed_out),
    "signal-proof-hang": Abuse("trap '' INT TERM HUP; sleep 600; sleep 600", timed_out),
    "background-daemons": Abuse(
        "nohup sleep 600 >/dev/null 2>&1 & setsid sleep 600 >/dev/null 2>&1 </dev/null & "
        "(setsid bash -c 'trap \"\" TERM; while :; do sleep 1; done' >/dev/null 2>&1 </dev/null &); "
        "echo started",
        daemons_started,
    ),
    "write-read-only-root": Abuse(
        "touch /usr/bin/evil; echo x >> /etc/passwd; mkdir /opt/evil", read_only_root
    ),
    "privilege-probes": Abuse(PRIVILEGE_PROBES, privileges_refused),
}


def tool_results(body: dict[str, Any]) -> list[Result]:
    return [entry["result"] for entry in body["logs"] if "tool_call" in entry]


def containers(docker_client: docker.DockerClient, instance_id: str) -> dict[str, bool]:
    """This worker's containers: id → is a pool spare."""
    return {
        str(c["Id"]): c["Labels"].get(LABEL_POOL) == "1"
        for c in instance_containers(docker_client, instance_id)
    }


async def chat(client: Client, model_server: ScriptedModelServer, *commands: str) -> dict[str, Any]:
    model_server.extend(
        [*(ToolCalls([Call("execute_bash", {"command": c})]) for c in commands), Reply("done")]
    )
    response = await client.post("/chat", json={"message": "do as you are told"})
    text = await response.text()
    assert response.status == 200, text
    assert "internal error" not in text
    body: dict[str, Any] = await response.json()
    assert (body["error"], body["response"]) == (None, "done")
    return body


@pytest.mark.parametrize("abuse", ABUSES.values(), ids=ABUSES.keys())
async def test_the_worker_shrugs_off(
    make_client: ClientMaker,
    model_server: ScriptedModelServer,
    docker_client: docker.DockerClient,
    instance_id: str,
    abuse: Abuse,
) -> None:
    client = await make_client(
        sandbox_pool_size=1,
        sandbox_memory_mb=MEMORY_MB,
        sandbox_tmp_mb=TMP_MB,
        sandbox_workspace_mb=WORKSPACE_MB,
        sandbox_pids=PIDS,
        tool_timeout=TOOL_TIMEOUT,
        tool_max_timeout=TOOL_TIMEOUT,
        output_limit=4096,
    )
    pool = client.app[SANDBOX_POOL]
    await eventually(lambda: pool.ready == 1)
    claimed = set(containers(docker_client, instance_id))  # the spare the run will take

    body = await chat(client, model_server, abuse.command, "echo alive")

    result, after = tool_results(body)
    assert abuse.says_what_happened(result), result
    assert after["stdout"] == "alive\n", after  # the sandbox's executor outlived the abuse
    health = await client.get("/health")
    assert health.status == 200 and (await health.json())["status"] == "healthy"
    await eventually(lambda: pool.ready == 1)
    claimed |= set(containers(docker_client, instance_id))
    fresh = await chat(client, model_server, "echo next")
    assert tool_results(fresh)[0]["stdout"] == "next\n"

    def only_new_spares_left() -> bool:
        left = containers(docker_client, instance_id)
        return not claimed & set(left) and all(left.values()) and len(left) <= 1

    await eventually(only_new_spares_left)  # both runs' sandboxes removed, the pool refilled
