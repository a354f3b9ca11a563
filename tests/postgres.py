"""A throwaway PostgreSQL cluster for one test session, and a fresh database per test.

The cluster lives in a temporary directory: ``initdb`` with trust authentication for local
connections, the server listening on 127.0.0.1 at a free port and on a unix socket in the same
directory, durability off for the tests (:data:`FAST`: a crash loses nothing a test needs; the
benchmarks keep PostgreSQL's defaults). PostgreSQL refuses to run as root, so as root (CI) every
server binary runs as the ``postgres`` user that Debian's package creates, and the directory is
handed to it. The cluster is stopped and its directory removed when the session ends. Only the
standard library and asyncpg (the store's PostgreSQL driver) are used, so nothing else needs
installing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tests.served_worker import free_port

__all__ = ["FAST", "Cluster", "PostgresUnavailable", "find_bin_dir", "running_cluster"]

SERVICE_USER = "postgres"  # the account Debian's postgresql package creates
_VERSION_DIRS = Path("/usr/lib/postgresql")  # Debian's layout: /usr/lib/postgresql/<major>/bin
FAST = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
"""Durability off: what the tests run with (a crash loses nothing they need)."""


class PostgresUnavailable(Exception):
    """No PostgreSQL server binaries here, or no account that may run them."""


@dataclass(frozen=True)
class Cluster:
    """A running cluster: its superuser connects with no password over TCP or the socket."""

    host: str
    port: int
    socket_dir: Path
    user: str = SERVICE_USER

    def url(self, database: str) -> str:
        """A ``postgresql://`` URL of ``database``, as ``AGENT_DATABASE_URL`` takes it."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    @contextlib.asynccontextmanager
    async def fresh_database(self) -> AsyncIterator[str]:
        """A new empty database for one test, dropped afterwards; yields its URL."""
        name = f"test_{uuid.uuid4().hex}"
        admin = await asyncpg.connect(self.url("postgres"))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                yield self.url(name)
            finally:
                # FORCE: a connection a failed test left open must not keep the database alive.
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def find_bin_dir() -> Path | None:
    """The newest Debian-installed PostgreSQL's ``bin``, else wherever ``pg_ctl`` is on PATH."""

    def major(path: Path) -> int:
        return int(path.name) if re.fullmatch(r"\d+", path.name) else -1

    if _VERSION_DIRS.is_dir():
        versions = sorted(_VERSION_DIRS.iterdir(), key=major, reverse=True)
        for version in versions:
            if (version / "bin" / "initdb").is_file() and (version / "bin" / "pg_ctl").is_file():
                return version / "bin"
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and (Path(pg_ctl).parent / "initdb").is_file():
        return Path(pg_ctl).parent
    return None


@contextlib.contextmanager
def running_cluster(settings: Sequence[str] = FAST) -> Iterator[Cluster]:
    """Start a cluster in a temporary directory with these server ``settings`` (``name=value``);
    stop it and remove the directory on exit."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH; "
            "install Debian's postgresql package (scripts/test.sh does, as root)"
        )
    run_as = _service_account()
    root = Path(tempfile.mkdtemp(prefix="aw-pg-"))
    try:
        if run_as is not None:
            os.chown(root, run_as.pw_uid, run_as.pw_gid)
        data = root / "data"
        _run(run_as, bin_dir / "initdb", "-D", data, "-U", SERVICE_USER, "--auth=trust", "-E", "UTF8",
             "--locale=C", "--no-sync")  # fmt: skip
        cluster = _start(run_as, bin_dir, root, data, settings)
        try:
            yield cluster
        finally:
            # immediate: the data is thrown away, so there is nothing to flush first.
            _run(run_as, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _service_account() -> pwd.struct_passwd | None:
    """The account to run the server as: ``postgres`` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, and PostgreSQL refuses root, but there is no {SERVICE_USER!r} account "
            "to run it as (Debian's postgresql package creates it)"
        ) from None


def _start(
    run_as: pwd.struct_passwd | None, bin_dir: Path, root: Path, data: Path, settings: Sequence[str]
) -> Cluster:
    log = root / "server.log"
    problem = ""
    # A free port can be taken between choosing it and the server binding it (other test sessions
    # run on this machine): try a few.
    for _ in range(5):
        port = free_port()
        options = " ".join(
            f"-c {setting}"
            for setting in (
                "listen_addresses=127.0.0.1",
                f"port={port}",
                f"unix_socket_directories={root}",
                "max_connections=200",  # concurrency tests open many connections at once
                *settings,
            )
        )
        try:
            _run(run_as, bin_dir / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start")
        except PostgresUnavailable as e:
            problem = f"{e}\n{log.read_text(errors='replace') if log.exists() else ''}"
            continue
        return Cluster(host="127.0.0.1", port=port, socket_dir=root)
    raise PostgresUnavailable(f"the PostgreSQL server did not start: {problem}")


def _run(run_as: pwd.struct_passwd | None, program: Path, *args: object) -> None:
    argv = [str(program), *map(str, args)]
    if run_as is not None:
        argv = ["runuser", "-u", run_as.pw_name, "--", *argv]
    # cwd: the server account may not be allowed into ours (root's home, a test's tmp dir).
    done = subprocess.run(argv, capture_output=True, text=True, cwd="/", check=False)
    if done.returncode != 0:
        raise PostgresUnavailable(f"{' '.join(argv)} exited {done.returncode}: {done.stderr or done.stdout}")
