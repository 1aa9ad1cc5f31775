"""Worker processes that never outlive the process that started them (docs/reliability.md).

Every pool molgfn starts (``run.workers``: assembling and scoring molecules; ``reward.workers``:
descriptors; the docking workers) calls :func:`worker_setup` first. On Linux it asks the kernel to send
SIGKILL to the worker when its parent dies (``PR_SET_PDEATHSIG``), so a trainer killed with ``kill -9``
leaves no process behind; Ctrl-C, which reaches the whole process group, is ignored by the workers
so that the trainer can stop gracefully and close them itself.
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """SIGKILL this process when its parent exits (Linux; elsewhere nothing). ``parent`` is the pid of the
    process that started this one: if it is no longer the parent when the request is in place (it died
    while this process was still starting, e.g. importing for a spawned pool), exit now."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    expected = os.getppid() if parent is None else parent
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != expected:  # the parent died before the request was made
        os._exit(1)


def worker_setup(parent: int | None = None) -> None:
    """The common start of every worker: no graceful-stop handlers of the parent, die with it. Pass the
    starting process's pid (``initargs=(os.getpid(),)``) so that a worker whose parent died while it was
    starting does not live on."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent)
