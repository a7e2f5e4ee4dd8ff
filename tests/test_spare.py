"""Issue 20: fake mode reads the README's EB facts in a helper forked as the command begins
(``forked.Spare``), which imports python-casacore while the packager reads the reduction.
The spare must compute what the ``Later`` gives it, with its modules imported there and not
here; a spare that died leaves the work to this process; one never given work is stopped."""

from __future__ import annotations

import os
import sys

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
