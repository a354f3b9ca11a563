"""The ``agent-worker`` command.

The worker's modules are imported only by the commands that run it (serve, migrate): ``run`` and
``tasks`` are a client, and start in a fraction of the time without them.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import ipaddress
import sys
from typing import TYPE_CHECKING

from client.cli import COMMANDS as CLIENT_COMMANDS
from client.cli import add_commands as add_client_commands
from client.cli import run_command as run_client_command

if TYPE_CHECKING:
    from api.settings import Settings

__all__ = ["main"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-worker", description="Self-hosted agent runtime.")
    parser.add_argument(
        "--version", action="version", version=f"agent-worker {importlib.metadata.version('agent-worker')}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument(
        "--allow-anonymous",
        action="store_true",
        help="serve without AGENT_API_KEYS on a non-loopback address (anyone who can reach it can run code)",
    )
    commands.add_parser(
        "migrate",
        help="bring the database (AGENT_DATABASE_URL, or the SQLite file in AGENT_DATA_DIR) to this "
        "version's schema and exit; serve does the same at start-up",
    )
    add_client_commands(commands)  # run, tasks: a client of a running worker (client/cli.py)
    return parser


def _migrate(settings: Settings) -> int:
    import asyncio

    from runtime.store import migrate_database

    try:
        revision = asyncio.run(migrate_database(settings.database))
    except Exception as e:
        print(f"agent-worker: migration failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"agent-worker: the database is at revision {revision}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in CLIENT_COMMANDS:  # no worker settings: only the server's URL and key
        return run_client_command(args)
    import structlog
    from aiohttp import web
    from pydantic import ValidationError

    from api.app import create_app
    from api.settings import Settings
    from api.web.logging import configure_logging

    try:
        settings = Settings()
    except ValidationError as e:
        print(f"agent-worker: invalid configuration:\n{e}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        return _migrate(settings)
    if not settings.tokens and not _is_loopback(args.host) and not args.allow_anonymous:
        print(
            f"agent-worker: refusing to serve anonymously on {args.host}: set AGENT_API_KEYS "
            "(user:token,...) or pass --allow-anonymous",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_format, settings.log_level)
    log = structlog.get_logger("agent_worker")
    log.info(
        "starting",
        host=args.host,
        port=args.port,
        models=[m.key for m in settings.registered_models()],
        data_dir=str(settings.data_dir),
    )
    try:
        web.run_app(create_app(settings), host=args.host, port=args.port, print=None, access_log=None)
    except Exception as e:
        log.error("startup_failed", error=f"{type(e).__name__}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
