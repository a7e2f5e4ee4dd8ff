"""Issue 20: fake mode reads the README's EB facts in a helper forked as the command begins
(``forked.Spare``), which imports python-casacore while the packager reads the reduction.
The spare must compute what the ``Later`` gives it, with its modules imported there and not
here; a spare that died leaves the work to this process; one never given work is stopped."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from almaqa2 import forked

_MODULE = "pydoc_data.topics"  # (a module of the standard library nothing here imports)


def _where_and_whether_imported(offset: int) -> tuple[int, bool, int]:
    return os.getpid(), _MODULE in sys.modules, offset + 1


def test_a_spare_computes_what_it_is_given_with_its_modules_imported_there() -> None:
    assert _MODULE not in sys.modules
    with forked.Spare(_MODULE) as spare:
        later = forked.Later(_where_and_whether_imported, 41, spare=spare)
        pid, imported, answer = later.result()
    assert pid != os.getpid() and imported and answer == 42
    assert _MODULE not in sys.modules


def test_a_spare_that_died_leaves_the_work_here() -> None:
    with forked.Spare(_MODULE) as spare:
        assert spare._helper is not None
        spare._helper.kill()
        later = forked.Later(_where_and_whether_imported, 1, spare=spare)
        assert later.result() == (os.getpid(), False, 2)


def test_a_spare_never_given_work_is_stopped() -> None:
    with forked.Spare(_MODULE) as spare:
        helper = spare._helper
        assert helper is not None and helper.alive()
    assert not helper.alive()


def test_a_spare_forked_ahead_is_taken_by_the_first_asking_for_its_modules() -> None:
    """``qa2 package`` forks its spare as it starts (``launch``): the packager's ``Spare``
    must take that one, and a second ask must fork one of its own."""
    forked.Spare.ahead(_MODULE)
    ahead = forked.Spare._ahead[(_MODULE,)]
    with forked.Spare(_MODULE) as spare:
        assert spare._helper is ahead
        later = forked.Later(_where_and_whether_imported, 1, spare=spare)
        assert later.result() == (ahead._process.pid, True, 2)
    assert (_MODULE,) not in forked.Spare._ahead
    with forked.Spare(_MODULE) as again:
        assert again._helper is not None and again._helper is not ahead


def _log_info() -> None:
    logging.getLogger("almaqa2.test").info("said in the spare")


def test_a_spare_forked_ahead_logs_at_the_level_set_after_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A spare forked ahead is forked before the command sets its log level: what it logs
    at the level set since must reach this process all the same."""
    logging.getLogger().setLevel(logging.WARNING)
    forked.Spare.ahead(_MODULE)
    caplog.set_level(logging.INFO)
    with forked.Spare(_MODULE) as spare:
        forked.Later(_log_info, spare=spare).result()
    assert [r.getMessage() for r in caplog.records if r.name == "almaqa2.test"] == [
        "said in the spare"
    ]


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_a_spare_imports_numpy_without_its_thread_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy's BLAS starts a thread per core as it is imported (0.1 s of CPU taken from
    the packager's processes); a spare, which computes one function, has none.  (In a
    process of its own: this one may have imported numpy, and a fork has one thread.)"""
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    run = (
        "import sys\n"
        "from almaqa2 import forked\n"
        "from test_spare import _threads\n"
        "with forked.Spare('numpy') as spare:\n"
        "    print(forked.Later(_threads, spare=spare).result(), 'numpy' in sys.modules)\n"
    )
    tests = os.path.dirname(__file__)
    done = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, cwd=tests)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "False"]
