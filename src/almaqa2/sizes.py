"""Byte counts as people write them: ``10G`` in options (binary units, as split and tar
read them) and ``1.2 GB`` in READMEs and listings (decimal units, as disks are sold)."""

from __future__ import annotations

import re

from .errors import InputError

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)B?$", re.I)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """``10G``, ``500M``, ``2048`` (bytes) -> bytes."""
    found = _SIZE.match(text.strip())
    if not found or float(found[1]) <= 0:
        raise InputError(f"'{text}' is not a size", fix="write it like 10G, 500M or 2048")
    return int(float(found[1]) * _UNITS[found[2].upper()])


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
