"""The Allegro layout (seed 002): origpath is ``<SB>/<SB>``; the outer ``<SB>`` holds the
checklists ``Checklist_SB_<SB>[_<EB uid>].txt``, ``README.header.txt`` and ``scriptForPI.py``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from almaqa2.package.scan import Kind, SourceEntry

_CHECKLIST = re.compile(r"Checklist_SB_(?P<sb>.+?)(_uid___\w+)?\.txt")
_EXTRAS = re.compile(r"Checklist_SB_.+\.txt|scriptForPI\.py")


@dataclass(frozen=True)
class Allegro:
    sb_name: str
    extras: tuple[SourceEntry, ...]


def detect(root: Path) -> Allegro | None:
    """The Allegro extras of ``root`` if its parent has its name and holds SB checklists."""
    parent = root.parent
    if parent.name != root.name:
        return None
    names = sorted(os.listdir(parent))
    checklists = [m for m in map(_CHECKLIST.fullmatch, names) if m]
    if not checklists:
        return None
    extras = tuple(
        SourceEntry(
            PurePosixPath("..", name),
            parent / name,
            Kind.FILE,
            (st := os.stat(parent / name)).st_size,
            st.st_dev,
        )
        for name in names
        if _EXTRAS.fullmatch(name) and (parent / name).is_file()
    )
    return Allegro(min((m["sb"] for m in checklists), key=len), extras)
