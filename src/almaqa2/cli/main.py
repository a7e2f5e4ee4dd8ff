"""``qa2``'s entry point: run the command, map what went wrong to an exit code and one
sentence.  Exit codes: 0 ok, 1 a check failed, 2 bad usage or input, 128 + N a signal."""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence

import click
from rich.markup import escape

from almaqa2.cli import batch, commands, helpers, render, science, settings  # noqa: F401 - they add
from almaqa2.cli.app import cli, err
from almaqa2.cmdline import hoisted
from almaqa2.errors import Almaqa2Error, refused


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived: raised in the main thread so that every ``finally`` and
    ``with`` on the way out runs (staging removed, locks released), then exit 128 + N.
    A BaseException, so that no ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame: object) -> None:
    raise Stopped(signum)


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``qa2`` with ``argv``; returns the exit code (testable without a subprocess).

    Exit codes: 0 done, 1 a check failed, 2 bad input, 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP;
    whatever stops it, nothing half-written stays behind.
    """
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    in_main = threading.current_thread() is threading.main_thread()  # signals go there only
    previous = {s: signal.signal(s, _stop) for s in _STOP_SIGNALS} if in_main else {}
    try:
        return _run(argv, debug)
    except Stopped as exc:
        err.print(f"stopped by {signal.Signals(exc.signum).name}; nothing half-written was kept")
        return 128 + exc.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(argv: Sequence[str] | None, debug: bool) -> int:
    args = hoisted(sys.argv[1:] if argv is None else argv)
    try:
        code = cli.main(
            args=args,
            prog_name="qa2",
            standalone_mode=False,
            default_map=settings.default_map(cli),
            auto_envvar_prefix=settings.ENV_PREFIX,
        )
    except click.ClickException as exc:  # a usage error: one sentence, as for bad input
        ctx = getattr(exc, "ctx", None)
        see = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
        said = _SUGGESTED.sub(r"\1 (did you mean \2?)", exc.format_message()).rstrip(".")
        return _failed(args, said + see + ".", 2)
    except click.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            err.print("interrupted; nothing half-written was kept")
            return 130
        err.print("aborted")
        return 1
    except Almaqa2Error as exc:
        if debug:
            raise
        return _failed(args, str(exc), exc.exit_code)
    except OSError as exc:  # the system refused something the checks could not foresee
        if debug:
            raise
        return _failed(args, refused(exc), 2)
    return code if isinstance(code, int) else 0


_SUGGESTED = re.compile(r"^(.*)\. Did you mean (.*)\?$", re.S)
"""click's ``No such option '--out'. Did you mean '--plot'?``, made one sentence."""


def _failed(args: Sequence[str], sentence: str, code: int) -> int:
    """Say why the command stopped: its one sentence on stderr, and with ``--json`` the
    envelope on stdout too, so that a script reads every outcome the same way.  A stderr
    that cannot be written (a full disk) leaves the exit code to say it: it was 1, of the
    traceback that could not be printed either."""
    with contextlib.suppress(OSError):
        err.print(f"[red]error:[/red] {escape(sentence)}", highlight=False, soft_wrap=True)
    logging.getLogger("almaqa2").error("%s", sentence, extra={"said": True})  # a --log-file
    if "--json" in args:
        render.failure(sentence, code)
    return code


YOUNG = 50_000
"""Objects allocated between two collections of the youngest (Python's default is 700)."""


def entrypoint() -> None:
    """Run ``qa2`` and exit with its code.

    The cyclic garbage collector is set for a command that runs once.  What the imports
    made is frozen out of it (``gc.freeze``), and the youngest objects are collected every
    ``YOUNG`` allocations: the collections walked the command's own data again and again
    as it grew (the scan's entries, a manifest's lines), none of it a cycle to collect,
    ~35 ms of a fake package of 48,000 files that takes 0.5 s.

    Once the command is done, the process ends as soon as the ``atexit`` hooks have run
    (logging's, which flush the log file) and its output is flushed (``os._exit``): the
    interpreter's own exit would only take every module apart (click's, rich's, numpy's
    and casacore's where a run imported them), 7 ms of a fake package of 0.55 s, and
    destroy a table whose writes failed, which aborts (``ms.close``).  The command has
    closed its files and tables, and stopped its helpers."""
    gc.freeze()
    gc.set_threshold(YOUNG, 10, 10)
    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # (a reader gone: what failed before was said)
            stream.flush()
    os._exit(code)
