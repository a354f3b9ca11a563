"""The Python kernel: one persistent interpreter of a session, run by the executor in the sandbox.

This file is not imported by the worker. Its source travels to the executor in the container's
environment and the executor starts it, once per session, in a session (and process group) of its
own (see :mod:`sandbox.container.executor`). Standard library only.

Cells come in on fd 3, each as a line with its length in bytes and then the UTF-8 source; they run
one at a time in one namespace, so variables, imports and open files survive between them. The
kernel writes ``+`` as a line on fd 4 when it begins a cell and, after it, the cell's status (0, 1
for an exception, or a ``SystemExit`` code). Nothing else writes to fd 4: user code prints to
stdout and stderr (fds 1 and 2), so it cannot end a cell early. An exception prints its traceback
to stderr; so does the ``KeyboardInterrupt`` the executor raises with SIGINT when a cell passes its
timeout, after which the kernel waits for the next cell with its state intact.
"""

from __future__ import annotations

import os
import sys
import traceback
import types

_CELLS, _DONE = 3, 4


def run_cell(source: bytes, namespace: dict[str, object]) -> int:
    try:
        exec(compile(source.decode("utf-8"), "<cell>", "exec"), namespace)
    except SystemExit as e:  # exit() ends the cell, not the kernel and its state
        code = e.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def serve() -> None:
    for fd in (_CELLS, _DONE):
        os.set_inheritable(fd, False)  # the cells' own child processes get neither
    cells = os.fdopen(_CELLS, "rb")
    # The cells' own __main__, apart from this module: pickle and `import __main__` find their names.
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    namespace = main.__dict__
    while True:
        try:
            header = cells.readline()
            if not header:
                return  # the executor closed our end: the session is over
            source = cells.read(int(header))
            os.write(_DONE, b"+\n")  # begun: from here on, the cell must not run again
            status = run_cell(source, namespace)
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os.write(_DONE, b"%d\n" % status)
        except KeyboardInterrupt:
            continue  # an interrupt that came just as a cell ended: nothing to stop any more


if __name__ == "__main__":
    serve()
