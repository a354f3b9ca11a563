"""Seed 000's A2A client code (httpx), verbatim: ``a2a_rpc``, ``subscribe_task`` and its A2A snippet.

Only the harness differs: BASE_URL, the key, the user id and the capability come from the
environment (as seed 000's own demo reads UUMIT_*), the client is built as the seed's ``main()``
builds it, and a few prints show what the seed's calls returned.
"""

import json
import os

import httpx

BASE_URL = os.environ["BASE_URL"]
API_KEY = os.environ["API_KEY"]
USER_ID = os.environ["USER_ID"]
CAPABILITY_ID = os.environ["CAPABILITY_ID"]


# --- seed 000, verbatim ------------------------------------------------------------------------


def a2a_rpc(
    client: httpx.Client,
    method: str,
    params: dict,
    req_id: str = "1",
) -> dict:
    """A2A JSON-RPC 通用调用封装"""
    r = client.post(
        "/a2a",
        json={
            "jsonrpc": "2.0",
            "id": req_id,
            "method": method,
            "params": params,
        },
    )
    r.raise_for_status()
    body = r.json()
    if "error" in body:
        err = body["error"]
        raise RuntimeError(f"JSON-RPC error [{err['code']}]: {err['message']}")
    return body["result"]


def subscribe_task(client: httpx.Client, task_id: str):
    """订阅交易状态变更(SSE 流)"""
    with client.stream(
        "POST",
        "/a2a",
        json={
            "jsonrpc": "2.0",
            "id": "sub-1",
            "method": "tasks/sendSubscribe",
            "params": {"id": task_id},
        },
    ) as resp:
        for line in resp.iter_lines():
            if not line.startswith("data: "):
                continue
            payload = json.loads(line[6:])
            if "result" in payload:
                status = payload["result"].get("status")
                print(f"Status update: {status}")
                if status in ("completed", "failed", "canceled"):
                    return payload["result"]
            elif "error" in payload:
                raise RuntimeError(payload["error"]["message"])
    return None


# --- harness -----------------------------------------------------------------------------------

headers = {
    "X-Api-Key": API_KEY,
    "X-Platform-User-Id": USER_ID,
    "Content-Type": "application/json",
    "Accept": "application/json",
}
with httpx.Client(base_url=BASE_URL, headers=headers, timeout=15.0) as client:
    # seed 000's A2A snippet, verbatim but for its capability id
    result = a2a_rpc(client, "tasks/send", {"capability_id": CAPABILITY_ID})
    task_id = result["id"]
    print(f"Created: {task_id}, status: {result['status']}")
    task = a2a_rpc(client, "tasks/get", {"id": task_id}, req_id="2")
    print(f"Status: {task['status']}")
    a2a_rpc(client, "tasks/cancel", {"id": task_id}, req_id="3")

    print(f"After cancel: {a2a_rpc(client, 'tasks/get', {'id': task_id}, req_id='4')['status']}")
    second = a2a_rpc(client, "tasks/send", {"capability_id": CAPABILITY_ID}, req_id="5")
    final = subscribe_task(client, second["id"])
    print(f"Final: {final['status']} {final['response']}")
