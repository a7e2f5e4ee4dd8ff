"""Names of the science-goal, group and member directories, and where an append goes.

Pure: given the UIDs to use and the directories an existing package already has, decide
``<sg>/<gous>/<member>`` for this run and which of those directories is new.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from almaqa2.errors import DestinationError
from almaqa2.package.rules import LEVELS
from almaqa2.uid import is_uid

APPENDS = ("", "group", "member")

Existing = Mapping[str, Mapping[str, Sequence[str]]]
"""An existing package: {sg dir: {group dir: [member dirs]}}."""


@dataclass(frozen=True)
class Units:
    sg: str
    gous: str
    member: str
    new_depth: int  # 0: the whole package is new, 1: the sg dir, 2: the group, 3: the member

    @property
    def member_path(self) -> PurePosixPath:
        return PurePosixPath(self.sg, self.gous, self.member)

    @property
    def new_unit(self) -> PurePosixPath:
        """The top-most directory this run creates, relative to packpath."""
        return PurePosixPath(*self.member_path.parts[: self.new_depth])


def unit_uid(name: str, level: int) -> str | None:
    """The UID a unit directory at ``level`` is named by (``group.uid___…``: level 1)."""
    prefix = f"{LEVELS[level][0]}."
    uid = name.removeprefix(prefix)
    return uid if name.startswith(prefix) and is_uid(uid) else None


def is_unit(name: str, level: int) -> bool:
    """True if ``name`` names a unit directory at ``level``, by its UID or a placeholder."""
    return unit_uid(name, level) is not None or name.startswith(LEVELS[level][1])


def _name(level: int, uid: str | None) -> str:
    prefix, placeholder = LEVELS[level]
    return f"{prefix}.{uid}" if uid else placeholder


def _number(name: str) -> int:
    """1 for ``group_ouss_id``, N for ``group_ouss_idN``, 0 for UID-named directories."""
    found = re.search(r"_ouss_id(\d*)$", name)
    if not found:
        return 0
    return int(found.group(1) or 1)


def _new(level: int, uid: str | None, siblings: Sequence[str], where: str) -> str:
    """A fresh directory name at ``level`` beside ``siblings``."""
    if uid:
        name = _name(level, uid)
        if name in siblings:
            raise DestinationError(
                f"{name} is already in the package",
                where,
                fix="package it with append='' to replace the package, or give another UID",
            )
        return name
    taken = [_number(s) for s in siblings if _number(s)]
    if not taken:
        return LEVELS[level][1]
    return f"{LEVELS[level][1]}{max(taken) + 1}"


def units(
    uids: tuple[str | None, str | None, str | None], append: str, existing: Existing, where: str
) -> Units:
    """Decide the member path for this run; ``where`` (packpath) is for error messages."""
    sg, gous, member = (_name(i, u) for i, u in enumerate(uids))
    if append == "" or not existing:
        return Units(sg, gous, member, 0)
    if append == "group":
        if sg not in existing:
            return Units(sg, gous, member, 1)
        return Units(sg, _new(1, uids[1], list(existing[sg]), where), member, 2)
    # append == "member": into the group with the highest number
    if sg not in existing:
        sg = sorted(existing)[-1]
    groups = existing[sg]
    if not groups:
        return Units(sg, gous, member, 2)
    gous = max(groups, key=lambda g: (_number(g), g))
    return Units(sg, gous, _new(2, uids[2], list(groups[gous]), where), 3)
