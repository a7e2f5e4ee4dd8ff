"""A helper process forked from this one, so that per-file Python work (hashing small
files, building tar pieces) uses the second core: threads would share one GIL.

The helper is forked (it sees this process's data as it is, nothing is pickled) and talks
through one duplex pipe.  It closes this process's end at once, so that if this process
dies, even by SIGKILL, the helper's next read or write on the pipe fails and it ends
quietly; it leaves the stop signals to this process, which tidies up and stops it.  A
daemonic process (a worker of ``qa2 batch``, which has a core of its own) may not fork:
``may_fork`` says so, and the callers then do the work themselves.

What forking imports is imported with this module, before any command's work starts: a
Ctrl-C that lands in an import (in its lock's clean-up) is printed and ignored by Python,
and the command would run on.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib
import logging
import mmap
import multiprocessing
import multiprocessing.connection  # (what forking a helper imports: see the top)
import multiprocessing.popen_fork
import multiprocessing.util  # (its exit hook, registered as it is imported: see below)
import os
import pickle
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Generic, TypeVar, cast

from almaqa2 import signals

log = logging.getLogger(__name__)


def may_fork() -> bool:
    return not multiprocessing.current_process().daemon


_a_helper = False  # (set in a helper as it starts)


def in_helper() -> bool:
    """Whether this process is a helper forked here, whose death its parent survives: what
    it does not finish, the parent does again (``Later``, ``shared``)."""
    return _a_helper


class Helper:
    """A forked process running ``target(pipe, *args)``; ``self.pipe`` is this side's end."""

    def __init__(self, target: Callable[..., None], *args: Any):
        fork = multiprocessing.get_context("fork")
        self.pipe, theirs = fork.Pipe()
        self._process = fork.Process(
            target=_run, args=(target, theirs, self.pipe, args), daemon=True
        )
        with signals.deferred():  # (a fork's hooks would swallow Ctrl-C)
            self._process.start()
        theirs.close()
        _running.add(self)

    def alive(self) -> bool:
        return self._process.is_alive()

    def kill(self) -> None:
        """End the helper now, whatever it is doing."""
        if self._process.is_alive():
            self._process.kill()

    def stop(self) -> None:
        """End the helper (if it has not ended by itself), wait for it, close the pipe."""
        self.kill()
        self._process.join()
        self.pipe.close()
        _running.discard(self)


_running: set[Helper] = set()
"""The helpers not stopped yet."""


@atexit.register
def _stop_running() -> None:
    """Stop the helpers still running as this process exits: a spare forked ahead for a
    command that then ended before taking it (``--help``, a mistyped option).  A helper
    ignores SIGTERM, which multiprocessing's own exit hook sends each daemonic process
    before it waits for them all: that wait would never end.  Registered after that hook
    (``multiprocessing.util``, imported above), this one runs before it."""
    for helper in list(_running):
        helper.stop()


class Shared:
    """Numbers two processes share, in memory both map (the helper is forked once it is
    made): the next piece of work to ``take``, or, for pieces both processes come to in
    the same order, the first not yet ``claim``-ed; and the bytes each has done.

    Nothing has a name: multiprocessing's Lock and Value make files in /dev/shm and remove
    them at once, and a run killed in that instant (by SIGKILL) leaves them there.  The
    pieces are counted under a POSIX record lock on that memory, which the kernel drops
    when its holder dies, however it dies: neither process can wait for a dead one."""

    def __init__(self, processes: int = 2) -> None:
        size = (1 + processes) * 8
        self._fd = os.memfd_create("almaqa2-shared", os.MFD_CLOEXEC)
        os.ftruncate(self._fd, size)
        self._memory = mmap.mmap(self._fd, size)
        self._slots = memoryview(self._memory).cast("q")  # next piece, bytes of 0, of 1...

    def __enter__(self) -> Shared:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._slots.release()
        self._memory.close()
        os.close(self._fd)

    def take(self) -> int:
        """The next piece's number, counted taken."""
        with self._locked():
            first: int = self._slots[0]
            self._slots[0] = first + 1
        return first

    def claim(self, piece: int) -> bool:
        """Whether ``piece`` is this process's to do: the other has not claimed it, nor a
        later one.  For pieces both processes come to in the same order: whoever is ahead
        claims each it comes to, so the two take turns as each is busy with one."""
        with self._locked():
            if piece < self._slots[0]:
                return False
            self._slots[0] = piece + 1
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def add(self, me: int, size: int) -> None:
        """``size`` more bytes done by process ``me`` (its own slot, no lock)."""
        self._slots[1 + me] += size

    def of(self, me: int) -> int:
        """The bytes done by process ``me``."""
        return int(self._slots[1 + me])

    def done(self) -> int:
        return int(sum(self._slots[1:]))


def receive(pipe: Any, raw: bool = False) -> Any:
    """The next message on ``pipe`` (``raw``: its bytes); EOFError however the other side
    went: its end closed (an end of file), closed with data unread (a reset), or killed
    while it was sending (a message cut short)."""
    try:
        return pipe.recv_bytes() if raw else pipe.recv()
    except OSError as exc:
        raise EOFError(str(exc)) from exc


def their_share(sizes: list[int], worth: int) -> list[int]:
    """Indexes (ascending) of the pieces of work of ``sizes`` for a helper: about half of
    the whole, the largest placed first; none when the whole is less than ``worth``."""
    if len(sizes) < 2 or sum(sizes) < worth:
        return []
    mine = theirs_total = 0
    theirs = []
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        if theirs_total < mine:
            theirs.append(i)
            theirs_total += sizes[i]
        else:
            mine += sizes[i]
    return sorted(theirs)


T = TypeVar("T")
A = TypeVar("A")


def shared(
    items: Sequence[A],
    theirs: Sequence[int],
    here: Callable[[A], T],
    there: Callable[[A], Any],
    taken: Callable[[Any], T],
    what: str,
) -> list[T]:
    """``here(item)`` for each of ``items``, in order; those at the indices ``theirs``
    (ascending) done by a forked helper as ``there(item)`` (plain lists and strings, quick
    to send), each sent as it is made and made ``taken(answer)`` here as it comes, while
    this process does its own between.  What the helper did not send (it died, or
    ``there`` raised) is done here, which says why; so is everything where this process
    may not fork.  How many the helper did is logged (``what``: "units were listed")."""
    done: dict[int, T] = {}
    if theirs and may_fork():
        theirs_set = set(theirs)
        mine = (i for i in range(len(items)) if i not in theirs_set)

        def do_mine() -> bool:
            i = next(mine, None)
            if i is not None:
                done[i] = here(items[i])
            return i is not None

        helper = Helper(_send_each, there, [items[i] for i in theirs])
        try:
            answers = received_pieces(helper.pipe, do_mine)
            for i, answer in zip(theirs, answers, strict=True):
                done[i] = taken(answer)
        except EOFError:
            pass
        finally:
            helper.stop()
    log.debug("%d of %d %s by a helper", sum(i in done for i in theirs), len(items), what)
    return [done[i] if i in done else here(item) for i, item in enumerate(items)]


def _send_each(pipe: Any, function: Callable[[Any], Any], items: list[Any]) -> None:
    """The helper of ``shared``.  Whatever failed here is done again by the parent, which
    says why; so its standard error points at /dev/null: a library that ends the process
    (casacore, when a write fails inside a destructor on a disk that fills, prints
    "terminate called after throwing an instance of 'casacore::AipsError'") would else
    speak before the parent's one sentence."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    with contextlib.suppress(Exception):
        send_pieces(pipe, map(function, items))


class Later(Generic[T]):
    """``function(*args)`` computed in a forked helper while this process does something
    else; ``result()`` waits for its value (pickled: keep it plain lists and strings) and
    raises what it raised.  What it logged there is logged here by ``result()``, so that
    it is said once, by the process whose handlers count the warnings (``--json``).
    Computed by ``result()`` itself where this process may not fork, or if the helper
    died."""

    def __init__(self, function: Callable[..., T], *args: Any, spare: Spare | None = None):
        """``spare``: a helper forked earlier that computes it (else one is forked now)."""
        self._call = function, args
        if spare is not None:
            self._helper = spare.given(function, args)
        else:
            self._helper = Helper(_send_result, function, args) if may_fork() else None

    def result(self) -> T:
        function, args = self._call
        if self._helper is None:
            return function(*args)
        try:
            done, value, logged = receive(self._helper.pipe)
        except EOFError:
            done, value, logged = True, function(*args), []
        finally:
            self._helper.stop()
        for record in logged:
            logging.getLogger(record.name).handle(record)
        if not done:
            raise value
        return cast(T, value)

    def ready(self) -> bool:
        """Whether ``result()`` would not wait (the helper has ended, one way or another)."""
        return self._helper is None or waiting(self._helper.pipe)

    def stop(self) -> None:
        """No result wanted: the helper, if any, ended now."""
        if self._helper is not None:
            self._helper.stop()


class Spare:
    """A helper forked now, which imports ``modules`` at once, while this process goes on
    (where it would be this process's work, on a core it keeps busy: python-casacore
    with numpy takes 0.15 s), then computes the one function a ``Later`` gives it.  One
    not given any is stopped on leaving its ``with``.

    A command can fork its spare ``ahead``, as it starts: its imports then run while this
    process imports the command's own modules, on a core otherwise idle."""

    _ahead: ClassVar[dict[tuple[str, ...], Helper]] = {}  # forked by ``ahead``, not taken yet

    @classmethod
    def ahead(cls, *modules: str) -> None:
        """Fork a spare for ``modules`` now, for the first ``Spare(*modules)`` to take."""
        if modules not in cls._ahead and may_fork():
            cls._ahead[modules] = Helper(_spare, modules)

    def __init__(self, *modules: str):
        self._helper = self._ahead.pop(modules, None)
        if self._helper is not None:
            log.debug("the helper forked ahead to import %s is taken", ", ".join(modules))
        elif may_fork():
            self._helper = Helper(_spare, modules)

    def given(self, function: Callable[..., Any], args: tuple[Any, ...]) -> Helper | None:
        """The helper, given ``function(*args)`` to compute (pickled: plain data) with what
        this process logs (a spare forked ahead was forked before logging was set); None
        if there is none (or it is gone): the ``Later`` then computes it itself."""
        helper, self._helper = self._helper, None
        if helper is not None:
            try:
                helper.pipe.send((function, args, logging.getLogger().level))
            except (OSError, ValueError):
                helper.stop()
                return None
        return helper

    def __enter__(self) -> Spare:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._helper is not None:
            self._helper.stop()
            self._helper = None


_SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1"}
"""What a spare sets before its imports, unless set already: numpy's BLAS starts a thread
per core as it is imported, 0.1 s of CPU taken from the other processes for nothing (a
spare computes one function, no linear algebra)."""


def _spare(pipe: Any, modules: tuple[str, ...]) -> None:
    for name, value in _SINGLE_THREADED.items():
        os.environ.setdefault(name, value)
    for name in modules:
        with contextlib.suppress(ImportError):  # (the Later's function says what is missing)
            importlib.import_module(name)
    function, args, level = receive(pipe)
    logging.getLogger().setLevel(level)
    _send_result(pipe, function, args)


def wait_for_any(laters: Iterable[Later[Any]], timeout: float | None = None) -> None:
    """Until one of ``laters`` is ready, at most ``timeout`` seconds (at once if none is at
    work)."""
    pipes = [later._helper.pipe for later in laters if later._helper is not None]
    if pipes:
        multiprocessing.connection.wait(pipes, timeout)


def send_pieces(pipe: Any, pieces: Iterable[Any]) -> None:
    """The helper's side of a long answer: each piece pickled and sent as it is made, by a
    thread (the pipe holds them back while the other side is busy: the making goes on
    meanwhile), then an empty message.  If making them raises, the error is raised here
    once the pieces made are sent, and no empty message: the other side knows the answer
    is not whole (``received_pieces``).  Once the other side is gone (killed: its end of
    the pipe fails), no more pieces are made: nobody is left to take them."""
    made: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    gone = threading.Event()
    sender = threading.Thread(target=_send_made, args=(pipe, made, gone))
    sender.start()
    try:
        for piece in pieces:
            if gone.is_set():
                return
            made.put(pickle.dumps(piece))
        made.put(b"")
    finally:
        made.put(None)
        sender.join()


def _send_made(pipe: Any, made: queue.SimpleQueue[bytes | None], gone: threading.Event) -> None:
    try:
        while (piece := made.get()) is not None:
            pipe.send_bytes(piece)
    except OSError:  # the other side is gone: nobody to tell
        gone.set()


def received_pieces(pipe: Any, idle: Callable[[], bool] | None = None) -> Iterator[Any]:
    """The other side of ``send_pieces``: each piece; EOFError if the helper ended, or
    stopped making them, before the last.  ``idle()``, if given, is called while no piece
    is waiting, until it says it has nothing left to do (False): work done meanwhile."""
    while True:
        while idle is not None and not waiting(pipe) and idle():
            pass
        piece = receive(pipe, raw=True)
        if not piece:
            return
        yield pickle.loads(piece)


def waiting(pipe: Any) -> bool:
    """Whether a message (or the end) is there to receive; a pipe that fails is left to
    ``receive`` to say so."""
    try:
        return bool(pipe.poll())
    except OSError:
        return True


def _send_result(pipe: Any, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    kept = _Kept()
    logging.getLogger().handlers = [kept]  # (this process does nothing else)
    try:
        done, value = True, function(*args)
    except Exception as exc:  # raised by result()
        done, value = False, exc
    pipe.send((done, value, kept.records))


class _Kept(logging.Handler):
    """The records logged, made plain sentences (their arguments may not pickle)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args, record.exc_info = record.getMessage(), None, None
        self.records.append(record)


def _run(target: Callable[..., None], pipe: Any, parents_end: Any, args: tuple[Any, ...]) -> None:
    global _a_helper
    _a_helper = True
    parents_end.close()
    signals.leave_to_parent()
    with contextlib.suppress(EOFError, ConnectionError):  # the parent is gone
        target(pipe, *args)
