"""Holding back SIGTERM, SIGHUP and SIGINT for the instant between making something that
must be cleaned up (a staging directory, a lock file) and registering its clean-up, so that
a command stopped there still leaves nothing behind (``cli.main`` turns the signals into an
exception that runs every clean-up on the way out)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

HELD = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """The signals wait until the block is left (in the main thread, where they are
    handled; elsewhere nothing is held)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def leave_to_parent() -> None:
    """In a forked helper process (hashing, building tar pieces): Ctrl-C or a SIGTERM to
    the whole group stops the parent, which tidies up and ends the helper; here they
    would only print a traceback."""
    for held in HELD:
        signal.signal(held, signal.SIG_IGN)
