"""Byte counts as people write them: ``10G`` in options (binary units, as split and tar
read them) and ``1.2 GB`` in READMEs and listings (decimal units, as disks are sold)."""

from __future__ import annotations

import re

from almaqa2.errors import InputError

_SIZE = re.compile(r"(\d{1,15}(?:\.\d{1,6})?)\s*([KMGT]?)B?", re.I)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
SMALLEST = 10 << 10
"""A tar is written in records of 10 KiB: no chunk can be smaller."""


def parse_size(text: str) -> int:
    """``10G``, ``500M``, ``20480`` (bytes) -> bytes; at least ``SMALLEST``."""
    found = _SIZE.fullmatch(text.strip())
    if not found:
        raise InputError(f"{text!r} is not a size", fix="write it like 10G, 500M or 20480")
    size = int(float(found[1]) * _UNITS[found[2].upper()])
    if size < SMALLEST:
        raise InputError(
            f"{text!r} is {size} bytes, smaller than one tar record", fix="give at least 10K"
        )
    return size


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
