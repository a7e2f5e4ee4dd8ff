"""``qa2``'s first steps, before the command line is imported (0.2 s of imports, which
leave the second core idle): ``qa2 package`` in fake mode forks at once the helper that
will read the README's EB facts from the MeasurementSets (``forked.Spare.ahead``), so
that it imports python-casacore with numpy (0.15 s) on that core meanwhile.

The line is read before click reads it, only to guess: a guess that is wrong leaves a
helper idle until the command ends, or the facts read by a helper forked later.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from almaqa2 import forked

GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "-vv", "-vvv", "--verbose", "--debug"})
"""The group's flags, which a reducer may type anywhere on the line."""
GLOBAL_VALUED = "--log-file"
"""The group's option with a value, which may be typed anywhere too."""

FAKE_FACTS = ("casacore.tables", "almaqa2.package.facts")
"""What the helper reading the EB facts imports (``facts.SPARE``, named here: importing
``facts`` is what takes the time)."""


def qa2() -> None:
    """The ``qa2`` command (``cli.main.entrypoint``), its helper forked ahead if it needs one."""
    words = hoisted(sys.argv[1:])
    if _command(words) == ("package", "fake"):
        forked.Spare.ahead(*FAKE_FACTS)
    from almaqa2.cli.main import entrypoint

    entrypoint()


def hoisted(argv: Sequence[str]) -> list[str]:
    """``argv`` with the group's options moved before the command, wherever they were
    typed (up to a ``--``, after which everything is an argument)."""
    end = list(argv).index("--") if "--" in argv else len(argv)
    moved: list[str] = []
    kept: list[str] = []
    words = iter(argv[:end])
    for word in words:
        if word in GLOBAL_FLAGS or word.startswith(f"{GLOBAL_VALUED}="):
            moved.append(word)
        elif word == GLOBAL_VALUED:
            moved += [word, next(words, "")]
        else:
            kept.append(word)
    return [*moved, *kept, *argv[end:]]


def _command(words: list[str]) -> tuple[str, str]:
    """The command ``words`` (hoisted) name and the ``--mode`` given to it ("fake", its
    default, if none), as far as they can be told before click reads them."""
    words = words[: words.index("--")] if "--" in words else words
    rest = iter(words)
    command = ""
    for word in rest:
        if word == GLOBAL_VALUED:
            next(rest, "")
        elif not word.startswith("-"):
            command = word
            break
    mode = "fake"
    for word in rest:
        if word == "--mode":
            mode = next(rest, "")
        elif word.startswith("--mode="):
            mode = word.removeprefix("--mode=")
    return command, mode
