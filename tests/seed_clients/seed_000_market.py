"""The client guide's REST functions and demo script (httpx), verbatim: community stats, the
capability list, orders with an idempotency key, parse_response, the feed cursor, ``main()`` of
``uumit_demo.py``, ``a2a_rpc`` / ``subscribe_task`` following an order, and ``stream_ai_create``.

Only the harness differs: BASE_URL (the guide's fixed host) comes from the environment, as the
guide's own demo reads UUMIT_*; the harness calls the functions and prints what they returned.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import httpx

BASE_URL = os.environ["UUMIT_BASE_URL"]


# --- the client guide, verbatim ----------------------------------------------------------------


def get_community_stats():
    with httpx.Client(base_url=BASE_URL, timeout=10.0) as client:
        r = client.get("/api/v1/public/community-stats")
        r.raise_for_status()
        body = r.json()
        if body.get("code") != 0:
            raise RuntimeError(f"API error: code={body.get('code')} message={body.get('message')}")
        return body["data"]


def list_capabilities(client: httpx.Client, *, category: str | None = None, page: int = 1):
    params = {"page": page, "page_size": 20}
    if category:
        params["category"] = category
    r = client.get("/api/v1/capabilities", params=params)
    r.raise_for_status()
    body = r.json()
    if body.get("code") != 0:
        raise RuntimeError(f"code={body['code']} message={body.get('message')}")
    return body["data"]  # PagedData: items, total, page, page_size, has_more


def create_transaction(
    client: httpx.Client,
    *,
    capability_id: str,
    idempotency_key: str | None = None,
):
    key = idempotency_key or str(uuid.uuid4())
    payload = {
        "capability_id": capability_id,
        "demand_id": None,
        "context_id": None,
        "booked_hours": None,
    }
    r = client.post(
        "/api/v1/transactions",
        json=payload,
        headers={"Idempotency-Key": key},
    )
    r.raise_for_status()
    body = r.json()
    if body.get("code") != 0:
        raise RuntimeError(f"code={body['code']} message={body.get('message')}")
    return body["data"], key


class UUMitAPIError(Exception):
    def __init__(self, code: int, message: str, http_status: int | None = None):
        self.code = code
        self.message = message
        self.http_status = http_status
        super().__init__(f"[{code}] {message}")


def parse_response(r: httpx.Response) -> dict:
    r.raise_for_status()
    body = r.json()
    if body.get("code") != 0:
        raise UUMitAPIError(
            code=body.get("code", -1),
            message=body.get("message", ""),
            http_status=r.status_code,
        )
    return body["data"]


def iter_feed(client: httpx.Client, page_size: int = 20):
    cursor = None
    while True:
        params: dict = {"page_size": page_size}
        if cursor:
            params["cursor"] = cursor
        r = client.get("/api/v1/recommendations/feed", params=params)
        r.raise_for_status()
        body = r.json()
        if body.get("code") != 0:
            raise RuntimeError(body.get("message"))
        data = body["data"]
        yield from data["items"]
        if not data.get("has_more"):
            break
        cursor = data.get("next_cursor")
        if not cursor:
            break


"""Minimal UUMit API demo — httpx, agent auth, idempotent POST, feed cursor."""
BASE_URL = os.environ.get("UUMIT_BASE_URL", "https://api.uumit.com")
API_KEY = os.environ.get("UUMIT_API_KEY", "your_api_key")
USER_ID = os.environ.get("UUMIT_USER_ID", "your_user_id")


def main() -> None:
    headers = {
        "X-Api-Key": API_KEY,
        "X-Platform-User-Id": USER_ID,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    with httpx.Client(base_url=BASE_URL, headers=headers, timeout=15.0) as client:
        # Public
        pub = client.get("/api/v1/public/community-stats").json()
        print("community-stats code:", pub.get("code"))
        # Capabilities (first page)
        caps = client.get(
            "/api/v1/capabilities",
            params={"page": 1, "page_size": 5},
        ).json()
        print("capabilities code:", caps.get("code"), "total:", caps.get("data", {}).get("total"))
        # Cursor feed (first page only if any)
        feed = client.get(
            "/api/v1/recommendations/feed",
            params={"page_size": 5},
        ).json()
        print("feed code:", feed.get("code"))
        # Example: create transaction only if you have a real capability_id
        cap_id = os.environ.get("UUMIT_CAPABILITY_ID")
        if cap_id:
            idem = str(uuid.uuid4())
            tx = client.post(
                "/api/v1/transactions",
                json={"capability_id": cap_id},
                headers={"Idempotency-Key": idem},
            ).json()
            print("transaction code:", tx.get("code"), "idempotency:", idem)


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


def stream_ai_create(client: httpx.Client, description: str):
    """流式消费 AI 辅助创建任务"""
    with client.stream(
        "POST",
        "/api/v1/tasks/ai-create",
        json={"description": description},
    ) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: "):
                chunk = json.loads(line[6:])
                print(chunk)


# --- harness -----------------------------------------------------------------------------------

main()
stats = get_community_stats()
print("stats keys:", ",".join(sorted(stats)))
headers = {
    "X-Api-Key": API_KEY,
    "X-Platform-User-Id": USER_ID,
    "Content-Type": "application/json",
    "Accept": "application/json",
}
with httpx.Client(base_url=BASE_URL, headers=headers, timeout=15.0) as client:
    CAPABILITY_ID = os.environ["UUMIT_CAPABILITY_ID"]
    listed = list_capabilities(client, category="ocr")
    print("listed:", ",".join(c["id"] for c in listed["items"]))
    tx, key = create_transaction(client, capability_id=CAPABILITY_ID)
    again, _ = create_transaction(client, capability_id=CAPABILITY_ID, idempotency_key=key)
    print("same transaction on retry:", again["id"] == tx["id"], "amount:", tx["amount"])
    final = subscribe_task(client, tx["id"])
    print(f"Final: {final['status']} {final['response']}")
    task = a2a_rpc(client, "tasks/get", {"id": tx["id"]}, req_id="2")
    print(f"Status: {task['status']}")
    while parse_response(client.get(f"/api/v1/transactions/{tx['id']}"))["status"] == "running":
        time.sleep(0.05)  # settled right after the task's end
    wallet = parse_response(client.get("/api/v1/wallet"))
    print("wallet:", wallet["balance"], wallet["frozen"], wallet["total_spent"])
    print("feed items:", len(list(iter_feed(client, page_size=2))))
    try:
        parse_response(client.get("/api/v1/transactions/nope"))
    except httpx.HTTPStatusError as e:
        print("unknown transaction:", e.response.status_code)
    print("ai-create:")
    stream_ai_create(client, "Analyse last quarter's sales data, budget 120.5, due by month end")
