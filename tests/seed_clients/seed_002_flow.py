"""Seed 002's Python (requests) example, verbatim but for BASE_URL / TOKEN from the environment."""

import os
import time

import requests

BASE_URL = os.environ["BASE_URL"]
TOKEN = os.environ["TOKEN"]
WS = "ws1"
H = {"Authorization": f"Bearer {TOKEN}"}


def post_json(path, payload):
    r = requests.post(BASE_URL + path, headers={**H, "Content-Type": "application/json"}, json=payload, timeout=30)
    r.raise_for_status()
    return r.json()


def get_json(path):
    r = requests.get(BASE_URL + path, headers=H, timeout=30)
    r.raise_for_status()
    return r.json()


# workspace
post_json("/api/v1/workspaces", {"workspace_id": WS})
# conversation
conv = requests.post(BASE_URL + f"/api/v1/workspaces/{WS}/conversations", headers=H, timeout=30).json()
conv_id = conv["conversation_id"]
# message -> task
task = post_json(
    f"/api/v1/workspaces/{WS}/messages",
    {
        "conversation_id": conv_id,
        "message": "介绍明日方舟:终末地",
        "run_mode": "fast",
        "max_iterations": 100,
    },
)
task_id = task["task_id"]
# poll
offset = 0
while True:
    poll = get_json(f"/api/v1/tasks/{task_id}?from={offset}")["data"]
    offset = poll["next_offset"]
    for ev in poll["events"]:
        if ev["type"] == "text_chunk":
            print(ev["data"]["content"], end="", flush=True)
    if poll["status"] != "running":
        print()
        print("status:", poll["status"])
        break
    time.sleep(0.5)
