"""The follow's resume logic without I/O (:class:`client._resume.Follow`), which both clients drive."""

from __future__ import annotations

import pytest

from client import TaskEvent, TaskState, TransportError
from client._resume import EndedEarly, Follow


def event(offset: int, type_: str = "text_chunk") -> TaskEvent:
    return TaskEvent(offset=offset, type=type_, data={}, timestamp=0.0)


def state(status: str, events: list[TaskEvent], has_more: bool = False) -> TaskState:
    return TaskState.model_validate(
        {
            "task_id": "t",
            "status": status,
            "events": events,
            "next_offset": events[-1].offset + 1 if events else 0,
            "has_more": has_more,
            "conversation_id": None,
            "workspace_id": None,
            "created_at": 0.0,
            "updated_at": 0.0,
            "error": None,
        }
    )


def test_repeats_after_a_resume_are_skipped_and_the_final_event_ends_it() -> None:
    follow = Follow("t 1", 0, max_reconnects=2)
    assert follow.path == "/api/v1/tasks/t%201/events"
    assert follow.received([event(0), event(1)]) == [event(0), event(1)]
    assert follow.headers() == {"Last-Event-ID": "1"}

    assert follow.received([event(1), event(2), event(3, "run_completed"), event(4)]) == [
        event(2),
        event(3, "run_completed"),
    ]
    assert follow.ended


def test_a_poll_ends_a_task_that_is_over_and_asks_for_a_reconnect_when_it_found_nothing() -> None:
    follow = Follow("t", 5, max_reconnects=2)
    assert follow.poll().params == {"from": 5}

    with pytest.raises(EndedEarly):
        follow.polled(state("running", []))
    assert follow.polled(state("running", [event(5)])) == [event(5)] and not follow.ended
    assert follow.polled(state("completed", [])) == [] and follow.ended


def test_broken_streams_back_off_then_give_up_and_news_resets_the_count() -> None:
    follow = Follow("t", 0, max_reconnects=2)
    assert [follow.failed(OSError("reset")), follow.failed(OSError("reset"))] == [0.25, 0.5]
    follow.received([event(0)])
    assert follow.failed(OSError("reset")) == 0.25
    follow.failed(OSError("reset"))
    with pytest.raises(TransportError, match="3 times in a row"):
        follow.failed(OSError("reset"))
