"""The executor: the main process of every sandbox container, which runs the worker's commands.

This file is not imported by the worker. Its source travels in the container's environment and is
run by the container command (see :mod:`sandbox.docker_engine.backend`), so any image with a python3 runs
it and it is always the version the worker speaks. Standard library only.

Requests come in on stdin and events go out on stdout, one JSON object per line (the protocol is
in :mod:`sandbox.docker_engine.wire`); the worker reaches both through the Engine API's attach stream. One
thread, one ``selectors`` loop: requests, the pipes of every running command, and SIGCHLD (through
the signal wakeup fd) are all events of that loop, so calls run concurrently.

Each command runs in a session (and process group) of its own, with ``/dev/null`` as stdin and a
pipe per output stream. Its output is streamed as it comes. The call ends when the command's main
process exits: output still in the pipes is read for a short grace, then a pipe still held open by
a process the command left in the background is drained and discarded, so that process can keep
writing without blocking or dying of SIGPIPE, and the call does not wait for it. Such leftovers
live on, bounded by the pids limit and the container's life; when that limit is full and a call
cannot start, the executor kills the largest of them (say, a fork bomb left running) and says so
on that call's stderr. A timeout or a
cancel kills the session (the group first, in one atomic step, then anything that moved to another
group of the session), with no new process needed: a fork bomb at the pids limit cannot stop it.

Python cells (``py_exec``) run in a kernel per session (:mod:`sandbox.container.kernel`, whose source comes
in the environment too): a persistent interpreter in a session of its own, started on a session's
first cell, fed its cells on a pipe and answering each on a pipe of its own, so nothing a cell
prints can end it. A cell past its timeout gets SIGINT (a ``KeyboardInterrupt`` it can catch, the
state survives); a kernel that has not answered ``_INTERRUPT_GRACE`` seconds later is wedged and
killed, and that cell's exit says ``state_lost``, as does the next cell of a session whose kernel
died between cells, or was ended to make room for a new one (at most ``_MAX_KERNELS``, least
recently used first). The next cell starts a new kernel. A kernel acknowledges each cell as it
begins it, so a cell whose kernel died before that (its death not seen yet when the cell came)
runs once more in a new kernel rather than failing for a death that happened before it. Kernels
count against the pids limit and die with the container.

The commands run with the executor's uid, and docker-init (PID 1) holds the same stdin and stdout,
so a command can write into this stream through ``/proc/1/fd``. That reaches no further than its
own sandbox's calls, and the worker validates every event it reads.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import selectors
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping
from errno import EINVAL
from typing import Any

PROTOCOL_VERSION = 1
_CHUNK = 65536
_GRACE = 0.2  # after the main process exits: output its children still have in flight
_SPAWN_TRIES, _SPAWN_BACKOFF = 20, 0.05  # a full pids limit frees up once a kill lands
_KILL_ROUNDS, _KILL_PAUSE = 20, 0.005
_INTERRUPT_GRACE = 2.0  # after a cell's SIGINT: how long its kernel has to come back
_MAX_KERNELS = 8  # more sessions than this: the least recently used idle kernel makes room
_DRAIN_CHUNKS = 64  # read from a kernel's pipes at the end of a cell, at most
_KERNEL_ENV = "AGENT_WORKER_KERNEL"
_KERNEL_SOURCE = os.environ.pop(_KERNEL_ENV, None)  # popped: commands must not inherit it
_KERNEL_COMMAND = [
    "python3",
    "-u",  # unbuffered: a cell's prints stream as they come
    "-c",
    f"import os; exec(compile(os.environ.pop({_KERNEL_ENV!r}), 'kernel.py', 'exec'))",
    "agent-worker-kernel",
]
_OOM_COUNTERS = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")


class Job:
    """One running command, until its main process is reaped and its call has ended."""

    def __init__(self, call_id: str, pid: int, pipes: dict[int, str], timeout: float) -> None:
        self.id = call_id
        self.pid = pid
        self.pipes = pipes  # read end -> "stdout" / "stderr"
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.ended: float | None = None  # exit or kill, for the duration
        self.reaped: float | None = None
        self.status = 0
        self.timed_out = False
        self.canceled = False
        self.finished = False


class Cell:
    """One ``py_exec`` call, in its session's kernel."""

    def __init__(self, call_id: str, source: bytes, timeout: float, lost: bool) -> None:
        self.id = call_id
        self.source: bytes | None = source  # until the kernel says it began: a dead kernel's cell reruns
        self.resubmitted = False
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.interrupted: float | None = None  # when SIGINT was sent (timeout or cancel)
        self.canceled = False
        self.lost = lost  # the session's previous kernel died between cells


class Kernel:
    """A session's interpreter: its pid, the pipes to it, and the cell it runs, if any."""

    def __init__(self, session: str, pid: int, cells_w: int, done_r: int, pipes: dict[int, str]) -> None:
        self.session = session
        self.pid = pid
        self.cells_w = cells_w
        self.outbox = bytearray()  # cell source the pipe has not taken yet
        self.done_r = done_r
        self.done = bytearray()
        self.pipes = pipes  # read end -> "stdout" / "stderr"
        self.cell: Cell | None = None
        self.used = time.monotonic()


class Executor:
    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.jobs: dict[str, Job] = {}
        self.by_pid: dict[int, Job] = {}
        self.kernels: dict[str, Kernel] = {}  # by session
        self.kernel_pids: dict[int, Kernel] = {}  # until reaped, also after it was closed
        self.lost: set[str] = set()  # sessions whose kernel died between cells
        self.requests = bytearray()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd does the work
        self.selector.register(wake_r, selectors.EVENT_READ, self.on_signal)
        self.selector.register(0, selectors.EVENT_READ, self.on_requests)

    def serve(self) -> None:
        while True:
            registered = self.selector.get_map()
            for key, _ in self.selector.select(self.next_wakeup()):
                # An earlier callback of this round may have closed the fd (a kernel that died),
                # and a new kernel's pipe may have its number now: that one waits for the next round.
                if registered.get(key.fd) is key:
                    key.data(key.fd)
            self.on_tick()

    # --- requests ---------------------------------------------------------------------------

    def on_requests(self, fd: int) -> None:
        data = os.read(fd, _CHUNK)
        if not data:
            sys.exit(0)  # the container's stdin closed: nobody can ask for anything any more
        self.requests += data
        while True:
            end = self.requests.find(b"\n")
            if end < 0:
                return
            line = bytes(self.requests[:end])
            del self.requests[: end + 1]
            self.handle(line)

    def handle(self, line: bytes) -> None:
        call_id = None
        try:
            request = json.loads(line)
            call_id = str(request["id"])
            kind = request["kind"]
            if kind == "hello":
                self.emit({"kind": "hello", "id": call_id, "version": PROTOCOL_VERSION})
            elif kind == "run":
                self.run(call_id, [str(a) for a in request["argv"]], float(request["timeout"]))
            elif kind == "py_exec":
                self.py_exec(
                    call_id, str(request["session"]), str(request["code"]), float(request["timeout"])
                )
            elif kind == "cancel":
                job = self.jobs.get(call_id)
                if job is not None and job.ended is None:
                    job.canceled = True
                    self.kill(job)
                for kernel in self.kernels.values():
                    if kernel.cell is not None and kernel.cell.id == call_id:
                        kernel.cell.canceled = True
                        self.interrupt(kernel)
            elif kind == "oom_kills":
                self.emit({"kind": "oom_kills", "id": call_id, "count": oom_kills()})
            else:
                raise ValueError(f"unknown request kind {kind!r}")
        except (ValueError, TypeError, LookupError, OSError) as e:  # a bad request, not our end
            self.emit({"kind": "error", "id": call_id, "message": f"{type(e).__name__}: {e}"})

    def run(self, call_id: str, argv: list[str], timeout: float) -> None:
        if call_id in self.jobs:
            raise ValueError(f"call {call_id} is already running")
        fds: list[int] = []
        try:
            out_r, out_w = os.pipe()
            fds += (out_r, out_w)
            err_r, err_w = os.pipe()
            fds += (err_r, err_w)
            pid = self.spawn(call_id, argv, out_w, err_w)
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        os.close(out_w)
        os.close(err_w)
        job = Job(call_id, pid, {out_r: "stdout", err_r: "stderr"}, timeout)
        self.jobs[call_id] = job
        self.by_pid[pid] = job
        for fd in job.pipes:
            self.selector.register(fd, selectors.EVENT_READ, lambda fd, job=job: self.on_output(fd, job))

    # --- python kernels ---------------------------------------------------------------------

    def py_exec(self, call_id: str, session: str, code: str, timeout: float) -> None:
        kernel = self.kernels.get(session)
        if kernel is not None and kernel.cell is None:
            self.reap(kernel)  # it may have died just now, its SIGCHLD not handled yet
            kernel = self.kernels.get(session)
        if kernel is not None and kernel.cell is not None:
            raise ValueError(f"session {session} is running call {kernel.cell.id}")
        self.submit(session, Cell(call_id, code.encode("utf-8"), timeout, lost=False))

    def submit(self, session: str, cell: Cell) -> None:
        """Give ``cell`` to the session's kernel, starting one if there is none."""
        kernel = self.kernels.get(session)
        if kernel is None:
            self.make_room()
            kernel = self.start_kernel(cell.id, session)
        assert cell.source is not None
        cell.lost = cell.lost or session in self.lost
        self.lost.discard(session)
        kernel.cell = cell
        kernel.used = time.monotonic()
        if not kernel.outbox:  # else it is registered already, with a cut-off cell still to write
            self.selector.register(kernel.cells_w, selectors.EVENT_WRITE, lambda fd: self.on_writable(kernel))
        kernel.outbox += b"%d\n%s" % (len(cell.source), cell.source)

    def make_room(self) -> None:
        """At ``_MAX_KERNELS``, end the least recently used idle kernel: each one holds memory."""
        idle = [kernel for kernel in self.kernels.values() if kernel.cell is None]
        if len(self.kernels) >= _MAX_KERNELS and idle:
            oldest = min(idle, key=lambda kernel: kernel.used)
            kill_session(oldest.pid)
            self.close_kernel(oldest)
            self.lost.add(oldest.session)

    def start_kernel(self, call_id: str, session: str) -> Kernel:
        if _KERNEL_SOURCE is None:
            raise ValueError("this executor was started without the kernel's source")
        fds: list[int] = []
        try:
            for _ in range(4):
                fds += os.pipe()
            cells_r, cells_w, done_r, done_w, out_r, out_w, err_r, err_w = fds
            env = {**os.environ, _KERNEL_ENV: _KERNEL_SOURCE}
            pid = self.spawn(call_id, _KERNEL_COMMAND, out_w, err_w, ((cells_r, 3), (done_w, 4)), env)
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        for fd in (cells_r, done_w, out_w, err_w):
            os.close(fd)
        for fd in (cells_w, done_r, out_r, err_r):
            os.set_blocking(fd, False)
        kernel = Kernel(session, pid, cells_w, done_r, {out_r: "stdout", err_r: "stderr"})
        self.kernels[session] = kernel
        self.kernel_pids[pid] = kernel
        self.selector.register(done_r, selectors.EVENT_READ, lambda fd: self.on_done(kernel))
        for fd in kernel.pipes:
            self.selector.register(fd, selectors.EVENT_READ, lambda fd: self.on_kernel_output(kernel, fd))
        return kernel

    def on_writable(self, kernel: Kernel) -> None:
        try:
            del kernel.outbox[: os.write(kernel.cells_w, kernel.outbox)]
        except BlockingIOError:
            return
        except OSError:
            kernel.outbox.clear()  # the kernel is gone; its exit ends the cell
        if not kernel.outbox:
            self.selector.unregister(kernel.cells_w)

    def on_kernel_output(self, kernel: Kernel, fd: int) -> bool:
        """Pass on what ``fd`` has (to the running cell, if any); False once it is empty or closed."""
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(fd)
            os.close(fd)
            del kernel.pipes[fd]
            return False
        if kernel.cell is not None:  # between cells, a leftover thread's or child's output is dropped
            self.emit_output(kernel.cell.id, kernel.pipes[fd], data)
        return True

    def on_done(self, kernel: Kernel) -> None:
        try:
            data = os.read(kernel.done_r, 512)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(kernel.done_r)
            os.close(kernel.done_r)
            kernel.done_r = -1
            return
        kernel.done += data
        while (end := kernel.done.find(b"\n")) >= 0:
            line = bytes(kernel.done[:end])
            del kernel.done[: end + 1]
            if kernel.cell is None:
                continue
            if line == b"+":  # the kernel has the cell and runs it now
                kernel.cell.source = None
            else:
                status = int(line) if line.isdigit() else 1  # a cell can write to fd 4 too
                self.finish_cell(kernel, kernel.cell, status, lost=False)

    def reap(self, kernel: Kernel) -> None:
        try:
            pid, status = os.waitpid(kernel.pid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            del self.kernel_pids[pid]
            self.on_kernel_exit(kernel, status)

    def on_kernel_exit(self, kernel: Kernel, status: int) -> None:
        if self.kernels.get(kernel.session) is not kernel:
            return  # closed already (killed as wedged)
        if kernel.done_r >= 0:
            self.on_done(kernel)  # a cell that ended just before its kernel did
        kill_session(kernel.pid)  # what its cells left running goes with it
        cell = kernel.cell
        if cell is not None and cell.source is not None and not cell.resubmitted:
            # It died before it began this cell (say, killed just before the call came): none of
            # the cell ran, so it runs once more, in a new kernel, and says the state was lost.
            self.close_kernel(kernel)
            cell.lost = cell.resubmitted = True
            try:
                self.submit(kernel.session, cell)
            except OSError as e:
                self.emit({"kind": "error", "id": cell.id, "message": f"{type(e).__name__}: {e}"})
            return
        if cell is None:
            self.lost.add(kernel.session)
        else:
            code = os.waitstatus_to_exitcode(status)
            self.finish_cell(kernel, cell, 128 - code if code < 0 else code, lost=True)
        self.close_kernel(kernel)

    def interrupt(self, kernel: Kernel) -> None:
        assert kernel.cell is not None
        if kernel.cell.interrupted is None:
            kernel.cell.interrupted = time.monotonic()
            try:
                os.killpg(kernel.pid, signal.SIGINT)  # like Ctrl-C: a cell's child process too
            except ProcessLookupError:
                pass

    def finish_cell(self, kernel: Kernel, cell: Cell, exit_code: int | None, lost: bool) -> None:
        for fd in list(kernel.pipes):
            # What it printed before it said it was done; bounded, as a leftover thread may print on.
            for _ in range(_DRAIN_CHUNKS):
                if not self.on_kernel_output(kernel, fd):
                    break
        kernel.cell = None
        self.emit(
            {
                "kind": "exit",
                "id": cell.id,
                "exit_code": exit_code,
                "duration": (cell.interrupted or time.monotonic()) - cell.started,
                "timed_out": cell.interrupted is not None and not cell.canceled,
                "canceled": cell.canceled,
                "state_lost": lost or cell.lost,
            }
        )

    def close_kernel(self, kernel: Kernel) -> None:
        """Forget the kernel and close our ends of its pipes; its pid is still reaped later."""
        del self.kernels[kernel.session]
        if kernel.outbox:
            self.selector.unregister(kernel.cells_w)
        os.close(kernel.cells_w)
        for fd in [kernel.done_r, *kernel.pipes]:
            if fd >= 0:
                self.selector.unregister(fd)
                os.close(fd)
        kernel.done_r = -1
        kernel.pipes.clear()

    # --- commands ---------------------------------------------------------------------------

    def on_output(self, fd: int, job: Job) -> None:
        try:
            data = os.read(fd, _CHUNK)
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(fd)
            os.close(fd)
            del job.pipes[fd]
            return
        if not job.finished:  # after that, a background leftover's output is discarded
            self.emit_output(job.id, job.pipes[fd], data)

    def on_signal(self, fd: int) -> None:
        try:
            while os.read(fd, 512):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            kernel = self.kernel_pids.pop(pid, None)
            if kernel is not None:
                self.on_kernel_exit(kernel, status)
            job = self.by_pid.pop(pid, None)
            if job is not None:
                job.reaped = time.monotonic()
                job.ended = job.ended or job.reaped
                job.status = status

    def on_tick(self) -> None:
        now = time.monotonic()
        for kernel in list(self.kernels.values()):
            cell = kernel.cell
            if cell is None:
                continue
            if cell.interrupted is None and now >= cell.deadline:
                self.interrupt(kernel)
            elif cell.interrupted is not None and now >= cell.interrupted + _INTERRUPT_GRACE:
                kill_session(kernel.pid)  # wedged: it did not come back from the interrupt
                self.finish_cell(kernel, cell, None, lost=True)
                self.close_kernel(kernel)
        for job in list(self.jobs.values()):
            if job.ended is None and now >= job.deadline:
                job.timed_out = True
                self.kill(job)
            elif job.reaped is not None and not job.finished:
                if not job.pipes or now >= job.reaped + _GRACE:
                    self.finish(job)
            if job.finished and not job.pipes:
                del self.jobs[job.id]

    def next_wakeup(self) -> float | None:
        now = time.monotonic()
        times = [job.deadline for job in self.jobs.values() if job.ended is None]
        for kernel in self.kernels.values():
            if kernel.cell is not None:
                interrupted = kernel.cell.interrupted
                times.append(kernel.cell.deadline if interrupted is None else interrupted + _INTERRUPT_GRACE)
        times += [
            job.reaped + _GRACE for job in self.jobs.values() if job.reaped is not None and not job.finished
        ]
        return max(0.0, min(times) - now) if times else None

    def finish(self, job: Job) -> None:
        job.finished = True
        killed = job.timed_out or job.canceled
        code = os.waitstatus_to_exitcode(job.status)
        self.emit(
            {
                "kind": "exit",
                "id": job.id,
                "exit_code": None if killed else (128 - code if code < 0 else code),
                "duration": (job.ended or job.started) - job.started,
                "timed_out": job.timed_out,
                "canceled": job.canceled,
            }
        )

    def kill(self, job: Job) -> None:
        job.ended = time.monotonic()
        kill_session(job.pid)  # the call's main process leads its session

    def spawn(
        self,
        call_id: str,
        argv: list[str],
        out_w: int,
        err_w: int,
        more: tuple[tuple[int, int], ...] = (),
        env: dict[str, str] | None = None,
    ) -> int:
        """Start ``argv`` in a new session, stdin /dev/null, stdout and stderr into the given pipes.

        ``more`` are further (fd, as fd) pairs the process gets; ``env`` replaces the environment.
        The process is the OOM killer's first choice (see :func:`start_process`).

        When the pids limit is full, what earlier calls left running is killed, largest first, so
        that a fork bomb left in the background does not make the sandbox useless.
        """
        actions = ((out_w, 1), (err_w, 2), *more)
        attempt = 0
        while True:
            try:
                return start_process(argv, os.environ if env is None else env, actions)
            except BlockingIOError:  # EAGAIN: the pids limit is full
                attempt += 1
                if attempt == _SPAWN_TRIES:
                    raise
                killed = self.reclaim()
                if killed:
                    note = f"agent-worker: the process limit was full; killed {killed} processes that earlier calls left running\n"
                    self.emit_output(call_id, "stderr", note.encode())
                else:
                    time.sleep(_SPAWN_BACKOFF)

    def reclaim(self) -> int:
        """Kill the largest session no running call owns; how many processes that was."""
        keep = {os.getsid(0)} | {job.pid for job in self.jobs.values() if job.reaped is None}
        keep |= {kernel.pid for kernel in self.kernels.values() if kernel.cell is not None}
        sizes = Counter(session for _, session in live_processes() if session not in keep)
        return kill_session(sizes.most_common(1)[0][0]) if sizes else 0

    def emit_output(self, call_id: str, stream: str, data: bytes) -> None:
        text = base64.b64encode(data).decode("ascii")
        self.emit({"kind": "output", "id": call_id, "stream": stream, "data": text})

    def emit(self, event: dict[str, Any]) -> None:
        data = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]


def start_process(argv: list[str], env: Mapping[str, str], fds: tuple[tuple[int, int], ...]) -> int:
    """Fork and exec ``argv`` in a new session with stdin /dev/null and ``fds`` as (fd, as fd).

    Before it execs, the child makes itself the OOM killer's first choice (``oom_score_adj``
    1000; raising it needs no privilege, lowering it would): the sandbox's tmpfs mounts and any
    memory a command holds outside its own pages (a memfd, say) are charged to the container's
    memory limit but to no process, so without this the OOM killer picks the largest process,
    which is this executor, and the sandbox dies with the command. Everything the command starts
    inherits the score. ``posix_spawn`` cannot write a file between fork and exec, hence the fork.
    An exec that fails is raised here as the ``OSError`` it was, like ``posix_spawn`` would.
    """
    errors_r, errors_w = os.pipe()  # close-on-exec: EOF tells the parent the exec happened
    try:
        pid = os.fork()
    except OSError:
        os.close(errors_r)
        os.close(errors_w)
        raise
    if pid == 0:  # the child: nothing here may return into the executor's loop
        try:
            # First: until then this copy of the executor is as likely a victim as the executor.
            # A runtime without a writable score still runs the command.
            with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
            os.setsid()
            os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
            for fd, target in fds:
                os.dup2(fd, target)
            signal.set_wakeup_fd(-1)
            # Python ignores these; an ignored signal would stay ignored across exec.
            for signum in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
            os.execvpe(argv[0], argv, env)
        except BaseException as e:
            os.write(errors_w, b"%d" % (getattr(e, "errno", None) or EINVAL))
        finally:
            os._exit(127)
    os.close(errors_w)
    try:
        report = b""
        while chunk := os.read(errors_r, 64):
            report += chunk
    finally:
        os.close(errors_r)
    if report:
        os.waitpid(pid, 0)
        errno = int(report)
        raise OSError(errno, os.strerror(errno), argv[0])
    return pid


def kill_session(session: int) -> int:
    """SIGKILL every process of ``session``; how many there were.

    The process group the session's leader made goes first, in one atomic step that a racing fork
    cannot escape; then, in rounds, whatever moved to another group of the session.
    """

    def members() -> list[int]:
        return [pid for pid, sid in live_processes() if sid == session]

    found = set(members())
    try:
        os.killpg(session, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for _ in range(_KILL_ROUNDS):
        alive = members()
        if not alive:
            break
        found.update(alive)
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(_KILL_PAUSE)
    return len(found)


def live_processes() -> list[tuple[int, int]]:
    """(pid, session) of every live process in the container; zombies are dead already."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] not in (b"Z", b"X"):
            found.append((int(entry), int(fields[3])))
    return found


def oom_kills() -> int | None:
    """The memory cgroup's count of OOM kills (v2 memory.events, v1 memory.oom_control)."""
    for path in _OOM_COUNTERS:
        try:
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except OSError:
            continue
    return None


if __name__ == "__main__":
    Executor().serve()
