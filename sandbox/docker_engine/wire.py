"""The wire protocol between the worker and the executor in each sandbox (:mod:`sandbox.container.executor`).

One JSON object per line each way: requests on the container's stdin, events on its stdout. Every
request carries an ``id`` the worker chose; every event names the request it answers::

    request                        events
    hello                          hello {version}
    run {argv, timeout}            output {stream, data (base64)}*, then exit {exit_code, duration,
                                   timed_out, canceled}; or error {message} if it could not start
    py_exec {session, code,        the same as run, in the session's persistent Python kernel; exit
             timeout}              also says state_lost (the kernel died or was killed as wedged)
    cancel {id of a run/py_exec}   none of its own: that call's exit says canceled
    oom_kills                      oom_kills {count}: the memory cgroup's OOM kill counter
    (anything it cannot serve)     error {message}

A new capability is a new request kind (and the events answering it) here and in the executor; an
executor that does not know a kind answers ``error``, so nothing is ever silently dropped.

Events are validated here, at the boundary: the commands in a sandbox run with the executor's uid,
so nothing read from the stream is trusted beyond its declared shape.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Base64Bytes, BaseModel, Field, TypeAdapter

__all__ = [
    "PROTOCOL_VERSION",
    "CancelRequest",
    "ErrorEvent",
    "Event",
    "ExitEvent",
    "HelloEvent",
    "HelloRequest",
    "OomKillsEvent",
    "OomKillsRequest",
    "OutputEvent",
    "PyExecRequest",
    "Request",
    "RunRequest",
    "decode_event",
    "encode_request",
]

PROTOCOL_VERSION = 1  # the executor's own PROTOCOL_VERSION must match


class HelloRequest(BaseModel):
    kind: Literal["hello"] = "hello"
    id: str


class RunRequest(BaseModel):
    kind: Literal["run"] = "run"
    id: str
    argv: list[str] = Field(description="Program and arguments; found on the sandbox's PATH.")
    timeout: float = Field(gt=0, description="Seconds until the executor kills the call's session.")


class PyExecRequest(BaseModel):
    kind: Literal["py_exec"] = "py_exec"
    id: str
    session: str = Field(description="Cells of one session share one interpreter, started on its first.")
    code: str
    timeout: float = Field(gt=0, description="Seconds until the kernel is interrupted (SIGINT).")


class CancelRequest(BaseModel):
    kind: Literal["cancel"] = "cancel"
    id: str = Field(description="The run to kill.")


class OomKillsRequest(BaseModel):
    kind: Literal["oom_kills"] = "oom_kills"
    id: str


Request = HelloRequest | RunRequest | PyExecRequest | CancelRequest | OomKillsRequest


class HelloEvent(BaseModel):
    kind: Literal["hello"]
    id: str
    version: int


class OutputEvent(BaseModel):
    kind: Literal["output"]
    id: str
    stream: Literal["stdout", "stderr"]
    data: Base64Bytes


class ExitEvent(BaseModel):
    kind: Literal["exit"]
    id: str
    exit_code: int | None = Field(description="None when the executor killed the call.")
    duration: float = Field(description="Seconds from spawn to exit or kill.")
    timed_out: bool
    canceled: bool
    state_lost: bool = Field(
        False, description="py_exec: the session's interpreter died or was killed; its state is gone."
    )


class OomKillsEvent(BaseModel):
    kind: Literal["oom_kills"]
    id: str
    count: int | None = Field(description="None when no memory cgroup counter could be read.")


class ErrorEvent(BaseModel):
    kind: Literal["error"]
    id: str | None = Field(description="None when the request itself could not be parsed.")
    message: str


Event = Annotated[
    HelloEvent | OutputEvent | ExitEvent | OomKillsEvent | ErrorEvent, Field(discriminator="kind")
]
_EVENTS: TypeAdapter[Event] = TypeAdapter(Event)


def encode_request(request: Request) -> bytes:
    return request.model_dump_json().encode() + b"\n"


def decode_event(line: bytes) -> Event:
    """One event line; raises ``pydantic.ValidationError`` for anything else."""
    return _EVENTS.validate_json(line)
