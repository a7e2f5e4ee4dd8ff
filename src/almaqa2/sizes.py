"""Byte counts as people write them: ``10G`` or ``10GiB`` in options (binary units, as
split and tar read them), ``10GB`` when decimal is meant, and ``1.2 GB`` in READMEs and
listings (decimal units, as disks are sold)."""

from __future__ import annotations

import re

from almaqa2.errors import InputError

_SIZE = re.compile(r"(\d{1,15}(?:\.\d{1,6})?)\s*(?:([KMGT])(i?B)?|B)?", re.I)
_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}
SMALLEST = 10 << 10
"""A tar is written in records of 10 KiB: no chunk can be smaller."""


def _unit(found: re.Match[str]) -> tuple[str, int]:
    """The unit written and its bytes: ``G`` and ``GiB`` binary (``G`` as split reads it),
    ``GB`` decimal (as disks are sold)."""
    letter = (found[2] or "").upper()
    if not letter:
        return "B", 1
    if (found[3] or "").lower() == "b":
        return f"{letter}B", 1000 ** _POWERS[letter]
    return f"{letter}iB", 1024 ** _POWERS[letter]


def parse_size(text: str) -> int:
    """``10G`` or ``10GiB`` (binary), ``10GB`` (decimal), ``20480`` (bytes) -> bytes; at
    least ``SMALLEST``."""
    found = _SIZE.fullmatch(text.strip())
    if not found:
        raise InputError(
            f"{text!r} is not a size", fix="write it like 10G, 10GiB, 10GB, 500M or 20480"
        )
    size = int(float(found[1]) * _unit(found)[1])
    if size < SMALLEST:
        raise InputError(
            f"{text!r} is {size} bytes, smaller than one tar record", fix="give at least 10K"
        )
    return size


def size_in(size: int, given: str) -> str:
    """``size`` in the unit of the size ``given`` (``100K`` -> ``100.0 KiB``), so that
    what a reducer typed and what is shown compare at a glance."""
    found = _SIZE.fullmatch(given.strip())
    label, factor = _unit(found) if found else ("B", 1)
    return f"{size} B" if factor == 1 else f"{size / factor:.1f} {label}"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
