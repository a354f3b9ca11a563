"""The client side of the ``agent-worker`` command: ``run`` and ``tasks``, on :class:`~client.Client`.

``api/cli.py`` adds these subcommands to its parser and hands them here, so ``agent-worker run``
needs no worker configuration, only ``--server``/``AGENT_SERVER_URL`` and ``AGENT_API_KEY``.

Exit codes (docs/client.md): ``run`` and ``tasks follow``: 0 the task completed, 1 it failed, 3 it
was canceled (from elsewhere); every command: 2 bad usage, 4 the request was refused or the worker
unreachable, 130 interrupted with Ctrl-C (``run`` cancels its task on the worker first).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

from client._errors import AgentWorkerClientError
from client._live import LiveTask
from client._models import TaskAccepted, TaskEvent, TaskState
from client._sync import Client

__all__ = ["COMMANDS", "add_commands", "run_command"]

COMMANDS = frozenset({"run", "tasks"})
EXIT_OK, EXIT_FAILED, EXIT_CANCELED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 3, 4, 130
_EXITS = {"completed": EXIT_OK, "failed": EXIT_FAILED, "canceled": EXIT_CANCELED}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", help="the worker's URL (default: $AGENT_SERVER_URL, else http://127.0.0.1:8080)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON (one object per line) instead")


def add_commands(commands: Any) -> None:
    """Add ``run`` and ``tasks`` to the ``agent-worker`` subcommands (an argparse subparsers action)."""
    run = commands.add_parser("run", help="start a task on a running worker and show it live")
    run.add_argument("message", help="what to do")
    run.add_argument("--capability", help="run this capability with the message as its input")
    run.add_argument("--workspace", help="the workspace to run in (default: your default workspace)")
    run.add_argument("--conversation", help="continue this conversation (default: a new one)")
    run.add_argument("--once", action="store_true", help="one POST /chat run instead of a task")
    _common(run)

    tasks = commands.add_parser("tasks", help="list, show, follow or cancel your tasks")
    actions = tasks.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="your tasks, newest first")
    listing.add_argument("--status", choices=["pending", "running", "completed", "failed", "canceled"])
    listing.add_argument("--conversation", help="only this conversation's tasks")
    listing.add_argument("--page", type=int, default=1)
    listing.add_argument("--page-size", type=int, default=20)
    _common(listing)
    for name, text in (
        ("show", "a task's status, answer and tokens"),
        ("follow", "show a task's events live until it ends (Ctrl-C stops following, the task goes on)"),
        ("cancel", "cancel a task"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("task_id")
        if name == "follow":
            action.add_argument("--from", dest="from_offset", type=int, default=0, help="first event offset")
        _common(action)


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed ``run`` / ``tasks`` command; its exit code."""
    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False)
    try:
        with Client(args.server) as api:
            if args.command == "run":
                return _run(api, args, console)
            handler = {"list": _list, "show": _show, "follow": _follow, "cancel": _cancel}[args.action]
            return handler(api, args, console)
    except AgentWorkerClientError as e:
        errors.print(f"agent-worker: {e}", markup=False)
        return EXIT_ERROR


def _print_json(value: Any) -> None:
    print(json.dumps(value), flush=True)  # one object per line, never wrapped or styled


def _run(api: Client, args: argparse.Namespace, console: Console) -> int:
    if args.once:
        result = api.chat(args.message)
        if args.json:
            _print_json(result.model_dump(mode="json"))
        else:
            console.print(result.response, markup=False)
            usage = result.usage
            console.print(
                f"{'failed' if result.error else 'completed'} · {result.iterations} iterations · "
                f"{usage.total_tokens:,} tokens · {result.processing_time:.1f} s",
                style="bold red" if result.error else "bold green",
            )
        return EXIT_FAILED if result.error else EXIT_OK
    if args.capability:
        accepted = api.invoke_capability(
            args.capability, args.message, workspace=args.workspace, conversation_id=args.conversation
        )
    else:
        accepted = api.send_message(args.message, workspace=args.workspace, conversation_id=args.conversation)
    try:
        _started(accepted, args, console)
        return _show_live(api, accepted.task_id, 0, args, console)
    except KeyboardInterrupt:
        canceled = api.cancel(accepted.task_id)
        if args.json:
            _print_json(canceled.model_dump(mode="json"))
        else:
            console.print(f"\ntask {canceled.task_id} {canceled.status} (Ctrl-C)", style="bold yellow")
        return EXIT_INTERRUPTED


def _started(accepted: TaskAccepted, args: argparse.Namespace, console: Console) -> None:
    if args.json:
        _print_json(accepted.model_dump(mode="json"))
    else:
        console.print(f"task {accepted.task_id} {accepted.status}", style="dim")


def _show_live(
    api: Client, task_id: str, from_offset: int, args: argparse.Namespace, console: Console
) -> int:
    """Follow the task to its end, as JSON lines or live; the exit code of its outcome."""
    events: Iterable[TaskEvent] = api.follow(task_id, from_offset=from_offset)
    if args.json:
        final = None
        for event in events:
            _print_json(event.model_dump(mode="json"))
            final = event.type.removeprefix("run_") if event.is_final else final
        return _EXITS.get(final or "", EXIT_ERROR)
    live = LiveTask(console)
    try:
        for event in events:
            live.show(event)
    finally:
        live.close()
    return _EXITS.get(live.outcome.status or "", EXIT_ERROR)


def _follow(api: Client, args: argparse.Namespace, console: Console) -> int:
    try:
        return _show_live(api, args.task_id, args.from_offset, args, console)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _list(api: Client, args: argparse.Namespace, console: Console) -> int:
    page = api.list_tasks(
        status=args.status, conversation_id=args.conversation, page=args.page, page_size=args.page_size
    )
    if args.json:
        _print_json(page.model_dump(mode="json"))
        return EXIT_OK
    table = Table(
        title=f"tasks {page.page} of {max(1, -(-page.total // page.page_size))} ({page.total} in all)"
    )
    for column in ("task", "status", "capability", "created", "duration", "tokens", "price"):
        table.add_column(column, overflow="fold")
    for task in page.tasks:
        table.add_row(
            task.task_id,
            task.status,
            task.capability_id or "-",
            _when(task.created_at),
            "-" if task.duration is None else f"{task.duration:.1f} s",
            f"{task.usage.total_tokens:,}",
            "-" if task.amount is None else f"{task.amount:g}",
        )
    console.print(table)
    return EXIT_OK


def _all_events(api: Client, task_id: str) -> TaskState:
    """The task's state with every event of its log (read page by page)."""
    state = api.get_task(task_id)
    events = list(state.events)
    while state.has_more:
        state = api.get_task(task_id, from_offset=state.next_offset)
        events.extend(state.events)
    return state.model_copy(update={"events": events})


def _show(api: Client, args: argparse.Namespace, console: Console) -> int:
    state = _all_events(api, args.task_id)
    if args.json:
        _print_json(state.model_dump(mode="json"))
        return EXIT_OK
    live = LiveTask(Console(file=io.StringIO()))  # tallies the events without printing them
    for event in state.events:
        live.show(event)
    outcome = live.outcome
    table = Table.grid(padding=(0, 2))
    for name, value in (
        ("task", state.task_id),
        ("status", state.status),
        ("conversation", state.conversation_id or "-"),
        ("workspace", state.workspace_id or "-"),
        ("created", _when(state.created_at)),
        ("iterations", str(outcome.iterations)),
        ("tokens", f"{outcome.usage.total_tokens:,} ({outcome.usage.prompt_tokens:,} prompt)"),
        ("error", state.error or "-"),
    ):
        table.add_row(name, value)
    console.print(table)
    if outcome.response:
        console.print(outcome.response, markup=False)
    return EXIT_OK


def _cancel(api: Client, args: argparse.Namespace, console: Console) -> int:
    canceled = api.cancel(args.task_id)
    if args.json:
        _print_json(canceled.model_dump(mode="json"))
    else:
        console.print(f"task {canceled.task_id} {canceled.status}")
    return EXIT_OK
