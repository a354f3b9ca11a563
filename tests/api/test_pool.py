"""``/chat`` runs in a warm-pool spare, which is removed after the run and replaced."""

from __future__ import annotations

import docker

from api.web.keys import SANDBOX_POOL
from sandbox.docker_engine.backend import LABEL_POOL
from tests.api.conftest import ClientMaker
from tests.conftest import instance_containers
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls
from tests.sandbox.test_pool import eventually


def spares(docker_client: docker.DockerClient, instance_id: str) -> set[str]:
    return {
        str(c["Id"])
        for c in instance_containers(docker_client, instance_id)
        if c["Labels"].get(LABEL_POOL) == "1"
    }


async def test_chat_claims_a_spare_that_is_removed_and_replaced(
    make_client: ClientMaker,
    model_server: ScriptedModelServer,
    docker_client: docker.DockerClient,
    instance_id: str,
) -> None:
    client = await make_client(sandbox_pool_size=1)
    pool = client.server.app[SANDBOX_POOL]
    await eventually(lambda: pool.ready == 1)
    (spare,) = spares(docker_client, instance_id)
    model_server.extend(
        [ToolCalls([Call("execute_bash", {"command": "cat /proc/self/cgroup"})]), Reply("done")]
    )

    response = await client.post("/chat", json={"message": "where am I?"})

    body = await response.json()
    assert response.status == 200 and body["error"] is None
    (_, tool_log, _) = body["logs"]
    assert spare in tool_log["result"]["stdout"]  # the run's tool call ran in the spare
    await eventually(lambda: spare not in {c["Id"] for c in instance_containers(docker_client, instance_id)})
    await eventually(lambda: pool.ready == 1)
    assert spare not in spares(docker_client, instance_id)
