"""The words of a ``qa2`` line as typed: the group's options, which may be typed anywhere,
moved before the command (``hoisted``); the command and its mode as far as they can be
told before click reads the line (``told``: ``launch`` guesses from it)."""

from __future__ import annotations

from collections.abc import Sequence

GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "-vv", "-vvv", "--verbose", "--debug"})
"""The group's flags, which a reducer may type anywhere on the line."""
GLOBAL_VALUED = "--log-file"
"""The group's option with a value, which may be typed anywhere too."""


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


def told(words: list[str]) -> tuple[str, str]:
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
