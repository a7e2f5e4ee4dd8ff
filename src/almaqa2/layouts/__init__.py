"""Recognising a reduction: which EBs it holds, where, and what its layout reveals.

Every layout shares the script-generator core (``scriptgen``: EB directories next to
directories of combined products, or a single EB flat in origpath).  The Allegro and NRAO
layouts add what they know: checklists and scriptForPI beside origpath, the SB name, the
MOUS UID written in the directory name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..scan import SourceEntry, scan
from . import allegro, nrao, scriptgen
from .scriptgen import EB


@dataclass(frozen=True)
class Reduction:
    """A recognised reduction directory (``root``) and what was learnt about it."""

    root: Path
    layout: str  # "script-generator", "allegro" or "nrao"
    entries: tuple[SourceEntry, ...]
    ebs: tuple[EB, ...]
    extras: tuple[SourceEntry, ...] = ()  # files from beside origpath (Allegro)
    mous: str | None = None
    sb_name: str | None = None

    def place_of(self, entry: SourceEntry) -> tuple[str, EB | None]:
        """Where ``entry`` sits: ``eb``, ``qa2``, ``eb-nested`` or ``sb``, and its EB."""
        if entry.rel.parts[0] == "..":  # beside origpath (Allegro checklists, scriptForPI)
            return "sb", None
        for eb in self.ebs:
            if eb.dir == PurePosixPath():
                parts = entry.rel.parts
            elif entry.rel.is_relative_to(eb.dir):
                parts = entry.rel.relative_to(eb.dir).parts
            else:
                continue
            if len(parts) == 1:
                return "eb", eb
            if len(parts) == 2 and parts[0] == "qa2":
                return "qa2", eb
            if eb.dir != PurePosixPath():
                return "eb-nested", eb
        return "sb", None


def recognise(root: Path) -> Reduction:
    """Scan ``root`` and recognise its layout; raises InputError when no EB is found."""
    entries = scan(root)
    ebs = scriptgen.find_ebs(root, entries)
    found_allegro = allegro.detect(root)
    if found_allegro is not None:
        return Reduction(
            root,
            "allegro",
            entries,
            ebs,
            extras=found_allegro.extras,
            sb_name=found_allegro.sb_name,
        )
    mous = nrao.mous_from_name(root)
    if mous is not None:
        return Reduction(root, "nrao", entries, ebs, mous=mous)
    return Reduction(root, "script-generator", entries, ebs)
