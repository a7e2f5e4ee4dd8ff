"""A staged pipeline package (SPEC §3 layout 5, seed 001 "Case 2"): the output of
``qa2 stage`` after the reducer ran its scriptForPI and imaged in ``calibrated/``.

origpath is the staged package (``<project>/science_goal.*/group.*/member.*``) or its member
directory; the UIDs come from the directory names, the EBs from the pipeline's file names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from almaqa2.errors import InputError
from almaqa2.package.naming import is_unit, unit_uid

DELIVERY_DIRS = ("calibration", "script", "qa", "log", "product")
RESTORED = ("working", "rawdata", "products")
"""What a pipeline scriptForPI makes under ``calibrated/`` besides the reducer's images."""


@dataclass(frozen=True)
class Staged:
    member: Path
    sg: str | None
    gous: str | None
    mous: str | None


def _is_member(path: Path) -> bool:
    return (path / "script").is_dir() and (path / "calibration").is_dir()


def _members(root: Path) -> list[Path]:
    return sorted(
        member
        for sg in root.iterdir()
        if sg.is_dir() and is_unit(sg.name, 0)
        for group in sg.iterdir()
        if group.is_dir() and is_unit(group.name, 1)
        for member in group.iterdir()
        if member.is_dir() and is_unit(member.name, 2) and _is_member(member)
    )


def detect(root: Path) -> Staged | None:
    """The staged package at ``root`` (its project or member directory), if it is one."""
    if _is_member(root) and is_unit(root.name, 2):
        member = root
    else:
        members = _members(root)
        if not members:
            return None
        if len(members) > 1:
            raise InputError(
                f"the staged package holds {len(members)} members, which one to package is"
                " not clear",
                root,
                fix="give the member directory (…/member.uid___…) as origpath",
            )
        member = members[0]
    group, sg = member.parent, member.parent.parent
    return Staged(member, unit_uid(sg.name, 0), unit_uid(group.name, 1), unit_uid(member.name, 2))
