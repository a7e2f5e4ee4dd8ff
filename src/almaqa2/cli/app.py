"""The ``qa2`` group, its consoles and progress bar: what every command module shares.

No packaging logic lives in ``cli``: each command parses, calls the library and shows the
result; ``main`` maps errors to exit codes.  Each command imports the part of the library
it runs, so that ``qa2 verify`` does not start by loading the packager.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TimeRemainingColumn,
)

from almaqa2.version import __version__

out = Console(soft_wrap=True, highlight=False)  # no colours inside project codes, UIDs
err = Console(stderr=True, highlight=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qa2")
@click.option("-v", "--verbose", count=True, help="Say more (-vv: everything).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors (and --json output).")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """Package ALMA QA2 data reductions for review and delivery.

    -v, -q and --debug may be given anywhere on the line."""
    out.quiet = quiet  # results too: only errors (and --json, which a script asked for)
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    shown = RichHandler(console=err, show_time=False, show_path=False, level=level)
    logging.basicConfig(
        level=min(level, logging.WARNING),
        format="%(message)s",
        handlers=[shown, warned],
        force=True,
    )
    warned.seen.clear()
    ctx.obj = {"debug": debug}


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
    """A progress bar on a terminal only; it appears for work of more than two seconds.
    It shows bytes, or with ``counting`` items (the MOUSes of a batch)."""
    if not err.is_terminal:
        yield None
        return
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn() if counting else DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task(what, total=None, visible=False)
    started = [False]

    def update(done: int, total: int) -> None:
        if not started[0] and bar.get_time() - bar.tasks[0].start_time > 2:  # type: ignore[operator]
            started[0] = True
            bar.update(task, visible=True)
        bar.update(task, completed=done, total=total)

    with bar:
        bar.start_task(task)
        yield update
