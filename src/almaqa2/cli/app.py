"""The ``qa2`` group, its consoles and progress bar: what every command module shares.

No packaging logic lives in ``cli``: each command parses, calls the library and shows the
result; ``main`` maps errors to exit codes.  Each command imports the part of the library
it runs, so that ``qa2 verify`` does not start by loading the packager.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console, ConsoleRenderable
from rich.logging import RichHandler
from rich.text import Text

from almaqa2.errors import OUTPUT_REFUSED, DestinationError, InputError, no_room, reason
from almaqa2.sizes import human_size
from almaqa2.version import __version__

if TYPE_CHECKING:
    from rich.progress import Task

_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in "\n\t"}


def printable(text: str) -> str:
    """``text`` with its control characters (line breaks and tabs apart) spelt as escapes.
    What is printed comes from packages, chunks, tickets, web pages and lock files that
    others made, and a terminal obeys a control sequence in it (clearing the screen,
    retitling the window, hiding what follows)."""
    return text.translate(_CONTROLS)


class _Console(Console):
    """A console that prints every text ``printable``; on the output, what cannot be
    written there is said to be the output's (``_lost``)."""

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(printable(text), **options)

    def print(self, *objects: Any, **options: Any) -> None:
        try:
            super().print(*objects, **options)
        except OSError as exc:
            if self.stderr or exc.errno == errno.EPIPE:  # (a reader gone: click's to quiet)
                raise
            raise _lost(exc) from exc


def _lost(exc: OSError) -> DestinationError:
    """The output refused what the command printed (a redirect to a full disk): the error
    named no file, and the --json envelope written after it failed again, with a
    traceback.  It is named, and the output pointed at /dev/null: nothing more is written
    to it (the envelope, the flush at exit)."""
    out_fd = sys.stdout.fileno()
    try:
        where = os.readlink(f"/proc/self/fd/{out_fd}")
    except OSError:
        where = "the standard output"
    fix = "check where it goes"
    if exc.errno in OUTPUT_REFUSED:
        fix = no_room(exc.errno, f"/proc/self/fd/{out_fd}", "another place for it")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, out_fd)
    os.close(null)
    return DestinationError(
        f"could not write the output ({exc.strerror})", where, fix=f"{fix}, then run again"
    )


def fraction(_ctx: click.Context, _param: click.Parameter, value: float) -> float:
    """An option's fraction of 0 or more (a threshold): a negative one flagged every
    value, and "nan" none, each silently."""
    if not value >= 0:  # (False for NaN too)
        raise click.BadParameter(f"{value} is not a fraction of 0 or more, such as 0.1")
    return value


class _Logged(RichHandler):
    """Log records on a console, ``printable``."""

    def render_message(self, record: logging.LogRecord, message: str) -> ConsoleRenderable:
        return super().render_message(record, printable(message))


out = _Console(soft_wrap=True, highlight=False)  # no colours inside project codes, UIDs
err = _Console(stderr=True, highlight=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qa2")
@click.option("-v", "--verbose", count=True, help="Say more (-vv: everything).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors (and --json output).")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.option(
    "--log-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also append everything the run logs, with times, to this file.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, debug: bool, log_file: Path | None) -> None:
    """Package ALMA QA2 data reductions for review and delivery.

    -v, -q, --debug and --log-file may be given anywhere on the line.  Site defaults for
    any option: 'qa2 config' shows them and where each comes from."""
    out.quiet = quiet  # results too: only errors (and --json, which a script asked for)
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    shown = _Logged(console=err, show_time=False, show_path=False, level=level)
    shown.addFilter(lambda record: not getattr(record, "said", False))  # printed already
    handlers: list[logging.Handler] = [shown, warned]
    if log_file is not None:
        handlers.append(_log_file(log_file))
    lowest = logging.DEBUG if log_file else min(level, logging.WARNING)  # warned sees -q's too
    logging.basicConfig(level=lowest, format="%(message)s", handlers=handlers, force=True)
    if log_file is not None:
        logging.getLogger("almaqa2").debug(
            "qa2 %s %s", __version__, " ".join(shlex.quote(a) for a in sys.argv[1:])
        )
    warned.seen.clear()
    ctx.obj = {"debug": debug}


class _LogFile(logging.FileHandler):
    """The ``--log-file``.  A record it cannot write (a full disk) is said once on the
    console and the file is given up, the run going on: logging's own answer was a
    traceback on the console for every record."""

    given_up = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.given_up:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if self.given_up:
            return
        self.given_up = True  # (not removed from the logger: it is going through its handlers)
        why = reason(sys.exc_info()[1] or OSError("unknown"))
        err.print(f"warning: the log file cannot be written ({why}), and the run goes on"
                  f" without it: {self.baseFilename}", markup=False)  # fmt: skip


def _log_file(path: Path) -> logging.Handler:
    """A handler appending every record, with its time, level and module, to ``path``."""
    try:
        handler = _LogFile(path, encoding="utf-8")
    except OSError as exc:
        raise InputError("the log file cannot be opened for writing", path,
                         fix="give a file in a directory you can write") from exc  # fmt: skip
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


class _Warned(logging.Handler):
    """Keeps each warning of the run as its sentence, for the ``warnings`` of ``--json``
    output (whatever -q hides from the terminal)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING:
            self.seen.append(record.getMessage())


warned = _Warned()


@contextlib.contextmanager
def progress_bar(what: str = "packaging", counting: bool = False) -> Iterator[Any]:
    """A progress bar on a terminal only (none when piped, or with -q), for work of more
    than two seconds: done and total, the rate, the time so far, the time left (from the
    rate of the last 30 s) and the item at work; bytes, or with ``counting`` items (the
    MOUSes of a batch).  It leaves one closing line: how much, in how long, how fast."""
    if not err.is_terminal or out.quiet:
        yield None
        return
    from rich.progress import (  # (only here: a tenth of a command's start-up, when piped)
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if counting else DownloadColumn(),
        TextColumn("") if counting else TransferSpeedColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[item]}", markup=False),
        console=err,
        transient=True,
    )
    task = bar.add_task(what, total=None, visible=False, item="")
    started = [False]

    def update(done: int, total: int, item: str = "", /) -> None:
        if not started[0] and bar.get_time() - bar.tasks[0].start_time > 2:  # type: ignore[operator]
            started[0] = True
            bar.update(task, visible=True)
        # A total that grows as files come (a download) is set on the task itself:
        # update(total=...) would restart the rate; and the task is not finished yet.
        current = bar.tasks[0]
        if total != current.total:
            current.total, current.finished_time = total, None
        bar.update(task, completed=done, item=os.path.basename(item) or item)

    with bar:
        bar.start_task(task)
        yield update
    if started[0]:
        err.print(_closing(what, bar.tasks[0], counting), markup=False, highlight=False)


def _closing(what: str, task: Task, counting: bool) -> str:
    """``packaging: 2.0 GB in 21 s, 95.2 MB/s`` (a batch: ``MOUSes: 16 of 16 in 20 s``)."""
    seconds = task.elapsed or 0.0
    took = f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if counting:
        return f"{what}: {task.completed:.0f} of {task.total or 0:.0f} in {took}"
    rate = f", {human_size(int(task.completed / seconds))}/s" if seconds else ""
    return f"{what}: {human_size(int(task.completed))} in {took}{rate}"
