"""Holding back SIGTERM, SIGHUP and SIGINT for the instant between making something that
must be cleaned up (a staging directory, a lock file) and registering its clean-up, so that
a command stopped there still leaves nothing behind (``cli.main`` turns the signals into an
exception that runs every clean-up on the way out), and while a helper is forked (Python
prints and ignores an exception raised in the hooks a fork runs: Ctrl-C would be lost)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

HELD = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """The signals wait until the block is left, then are handled as they would have been
    (in the main thread, where they are handled; elsewhere nothing is held).  Their
    handlers are swapped for one that notes them, not the signals blocked: Python runs a
    handler in the main thread whichever thread the signal reached."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: dict[int, None] = {}

    def note(signum: int, frame: FrameType | None) -> None:
        caught[signum] = None

    previous = {held: signal.signal(held, note) for held in HELD}
    try:
        yield
    finally:
        for held, handler in previous.items():
            signal.signal(held, handler)
        for signum in caught:
            signal.raise_signal(signum)


def leave_to_parent() -> None:
    """In a forked helper process (hashing, building tar pieces): Ctrl-C or a SIGTERM to
    the whole group stops the parent, which tidies up and ends the helper; here they
    would only print a traceback."""
    for held in HELD:
        signal.signal(held, signal.SIG_IGN)
