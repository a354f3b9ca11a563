"""The A2A shapes of a task, folded from its events: pure functions, no server."""

from __future__ import annotations

import pytest

from api.a2a.wire import (
    AnswerUpdate,
    StatusUpdate,
    TaskView,
    state_of,
    status_of_state,
    task_object,
    update_result,
)
from runtime.engine.events import (
    Event,
    RunCompleted,
    RunFailed,
    RunStarted,
    StatusChanged,
    TextChunk,
    ToolCall,
    Usage,
)
from runtime.store import RunRecord, RunStatus, StoredEvent


def view(status: RunStatus = "pending") -> TaskView:
    record = RunRecord(id="t1", owner="alice", kind="task", status=status, created_at=1.0, updated_at=1.0)
    return TaskView.of(record, "ctx", "general")


def stored(offset: int, event: Event) -> StoredEvent:
    return StoredEvent(offset=offset, timestamp=1_700_000_000.5 + offset, event=event)


@pytest.mark.parametrize(
    ("ours", "v03", "v10"),
    [
        ("pending", "submitted", "TASK_STATE_SUBMITTED"),
        ("running", "working", "TASK_STATE_WORKING"),
        ("completed", "completed", "TASK_STATE_COMPLETED"),
        ("failed", "failed", "TASK_STATE_FAILED"),
        ("canceled", "canceled", "TASK_STATE_CANCELED"),
    ],
)
def test_states_map_both_ways(ours: RunStatus, v03: str, v10: str) -> None:
    assert state_of(ours, "0.3") == state_of(ours, "flat") == v03
    assert state_of(ours, "1.0") == v10
    assert status_of_state(v03) == status_of_state(v10) == ours


def test_a_state_we_never_take_maps_to_none() -> None:
    assert status_of_state("TASK_STATE_INPUT_REQUIRED") is None and status_of_state("rejected") is None


def test_events_fold_into_updates_and_the_final_task() -> None:
    task = view()
    updates = [
        task.apply(stored(0, RunStarted(message="hi", max_iterations=5, model="m"))),
        task.apply(stored(1, StatusChanged(status="running"))),
        task.apply(stored(2, ToolCall(iteration=1, id="c1", name="execute_python", arguments="{}"))),
        task.apply(stored(3, TextChunk(iteration=2, content="Hel"))),
        task.apply(stored(4, TextChunk(iteration=2, content="lo"))),
        task.apply(stored(5, RunCompleted(response="Hello", iterations=2, usage=Usage()))),
    ]

    assert updates == [
        [],
        [StatusUpdate()],
        [StatusUpdate("Running execute_python", progress=True)],
        [AnswerUpdate("Hel", append=False, last=False)],
        [AnswerUpdate("lo", append=True, last=False)],
        [AnswerUpdate("Hello", append=False, last=True), StatusUpdate()],
    ]
    assert task.ended and task.next_offset == 6
    v10 = task_object(task, "1.0")
    assert v10["status"] == {"state": "TASK_STATE_COMPLETED", "timestamp": "2023-11-14T22:13:25.500Z"}
    assert [m["role"] for m in v10["history"]] == ["ROLE_USER", "ROLE_AGENT"]
    assert v10["metadata"] == {"capability_id": "general"} and "kind" not in v10
    v03 = task_object(task, "0.3", history_length=0)
    assert v03["kind"] == "task" and v03["history"] == []
    assert v03["artifacts"][0]["parts"] == [{"kind": "text", "text": "Hello"}]
    assert task_object(task, "flat") == {
        "id": "t1",
        "status": "completed",
        "context_id": "ctx",
        "capability_id": "general",
        "response": "Hello",
        "error": None,
        "updated_at": 1_700_000_005.5,
    }


def test_update_results_per_dialect() -> None:
    task = view("running")
    progress = task.apply(stored(0, ToolCall(iteration=1, id="c1", name="execute_bash", arguments="{}")))[0]
    chunk = task.apply(stored(1, TextChunk(iteration=1, content="x")))[0]
    failed = task.apply(stored(2, RunFailed(error="boom", response="", iterations=1, usage=Usage())))[0]

    assert update_result(task, progress, "flat") is None and update_result(task, chunk, "flat") is None
    assert update_result(task, failed, "flat")["status"] == "failed"  # type: ignore[index]
    v03 = update_result(task, failed, "0.3")
    assert v03 is not None and v03["kind"] == "status-update" and v03["final"] is True
    assert v03["status"]["message"]["parts"] == [{"kind": "text", "text": "boom"}]
    v10 = update_result(task, chunk, "1.0")
    assert v10 == {
        "artifactUpdate": {
            "taskId": "t1",
            "contextId": "ctx",
            "artifact": {"artifactId": "answer", "name": "answer", "parts": [{"text": "x"}]},
            "append": False,
            "lastChunk": False,
        }
    }
