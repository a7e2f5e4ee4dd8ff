"""``qa2 fluxequal``: prepare ``calibrated/`` for the flux equalisation of an SB's EBs
(SPEC §9, seed 002's ``qa2_fluxequal_start.sh``): link each EB's ``*.ms.split.cal`` and its
fluxscale file (as ``<uid>.ms.split.cal.fluxscale``).

Links are relative (the reduction can move) and a rerun changes nothing; a file that is in
the way is never replaced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from almaqa2.errors import InputError
from almaqa2.uid import uid_prefix


@dataclass(frozen=True)
class Link:
    name: Path  # the link in calibrated/
    target: Path  # what it points to (absolute)
    there: bool = False  # made already (by an earlier run)

    @property
    def relative(self) -> str:
        return os.path.relpath(self.target, self.name.parent)


def _there(name: Path, target: Path) -> bool:
    """True if ``name`` is already the link to ``target``; InputError if something else
    is in its way."""
    if name.is_symlink() and name.resolve() == target.resolve():
        return True
    if name.exists() or name.is_symlink():
        raise InputError(
            "something else is in the way of a link (it is not replaced)",
            name,
            fix="move it away, then run again",
        )
    return False


def _eb_dirs(calibrated: Path) -> list[Path]:
    """The EB directories beside ``calibrated`` (Allegro) or beside its parent (NRAO)."""
    for root in (calibrated.parent, calibrated.parent.parent):
        found = sorted(
            {p.parent for p in root.glob("*/uid___*.ms.split.cal") if p.parent != calibrated}
        )
        if found:
            return found
    raise InputError(
        "no EB directory with a *.ms.split.cal found beside this directory or its parent",
        calibrated,
        fix="run it in the SB's calibrated/ directory once the EBs are calibrated",
    )


def plan(calibrated: Path) -> list[Link]:
    """The links ``calibrated`` needs, sorted (pure reading)."""
    calibrated = Path(os.path.abspath(calibrated))
    if not calibrated.is_dir():
        raise InputError("not a directory", calibrated, fix="give the SB's calibrated/ directory")
    links: list[Link] = []
    for eb_dir in _eb_dirs(calibrated):
        for split in sorted(eb_dir.glob("uid___*.ms.split.cal")):
            twin = next((link.target for link in links if link.name.name == split.name), None)
            if twin is not None:  # (checked before any link is made)
                raise InputError(
                    f"two EB directories hold {split.name} (the other: {twin.parent})",
                    eb_dir,
                    fix="keep one EB's MS of this name, then run again",
                )
            links.append(Link(calibrated / split.name, split))
            uid = uid_prefix(split.name)
            scales = sorted(p for p in eb_dir.glob(f"{uid}*fluxscale") if p.is_file())
            if not scales:
                raise InputError(
                    f"EB {uid} has no fluxscale file",
                    eb_dir,
                    fix="run its calibration to the fluxscale step first",
                )
            links.append(Link(calibrated / f"{split.name}.fluxscale", scales[0]))
    return [replace(link, there=_there(link.name, link.target)) for link in links]


def apply(links: list[Link]) -> None:
    """Make the links not made yet."""
    for link in links:
        if not link.there:
            os.symlink(link.relative, link.name)
