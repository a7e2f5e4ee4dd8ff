"""``qa2``'s first steps, before the command line is imported (0.2 s of imports, which
leave the second core idle): ``qa2 package`` in fake mode forks at once the helper that
will read the README's EB facts from the MeasurementSets (``forked.Spare.ahead``), so
that it imports python-casacore with numpy (0.15 s) on that core meanwhile.  Before all
that, the process is told to keep the memory it frees (``heap``): its helpers, forked
from it, inherit that.

The line is read before click reads it, only to guess: a guess that is wrong leaves a
helper idle until the command ends, or the facts read by a helper forked later.
"""

from __future__ import annotations

import sys

from almaqa2 import forked, heap
from almaqa2.cmdline import hoisted, told

FAKE_FACTS = ("casacore.tables", "almaqa2.package.facts")
"""What the helper reading the EB facts imports (``facts.SPARE``, named here: importing
``facts`` is what takes the time)."""


def qa2() -> None:
    """The ``qa2`` command (``cli.main.entrypoint``), its helper forked ahead if it needs one."""
    heap.keep_freed()
    words = hoisted(sys.argv[1:])
    if told(words) == ("package", "fake"):
        forked.Spare.ahead(*FAKE_FACTS)
    from almaqa2.cli.main import entrypoint

    entrypoint()
