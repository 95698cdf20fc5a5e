"""How the kit's commands stop: SIGINT and SIGTERM become one clean shutdown, and child processes die with
the command that started them."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by SIGINT or SIGTERM. A KeyboardInterrupt, so that every place that already
    stops on Ctrl-C (and every `finally` on the way out) stops on either signal the same way."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """What a shell reports for a command ended by this signal."""
        return 128 + self.signum


@contextmanager
def stopping_on_signals() -> Iterator[None]:
    """Within the block, the first SIGINT or SIGTERM raises `Stopped` in the main thread; later ones are
    ignored so that they cannot cut the shutdown short (it is bounded: children are killed if they do not
    stop). Handlers are installed explicitly because a background job, `nohup` or a CI runner starts a
    program with SIGINT ignored, and then Python never turns SIGINT into KeyboardInterrupt; SIGTERM's default
    ends the process without running any `finally`, so its children would outlive it. The previous handlers
    come back afterwards (the CLI also runs inside test processes)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; such a caller keeps its own
        return
    previous: dict[int, Any] = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def stop(signum: int, _frame: FrameType | None) -> None:
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        raise Stopped(signum)

    for each in STOP_SIGNALS:
        signal.signal(each, stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def die_with_parent(parent_pid: int) -> bool:
    """Have the kernel kill this process as soon as the process that started it ends, however it ends (a
    SIGKILL runs no cleanup). Linux only (prctl PR_SET_PDEATHSIG); elsewhere returns False and the parent's
    own shutdown is what stops the child. Call it first thing in the child, with the parent's pid.

    Linux ties the signal to the *thread* that started the child, so the parent must start it from a thread
    that lives as long as the child should (the kit starts its servers from the main thread)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    # The parent may have ended before the request took effect: then this process has been re-parented already.
    if os.getppid() != parent_pid:
        os._exit(1)
    return True
