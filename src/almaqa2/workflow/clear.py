"""``qa2 clear``: start a calibration or a combination again from a clean directory (SPEC
§9, seed 002's ``qa2_clear``).

In an EB directory everything goes but the ASDM and the calibration script; in a
``calibrated/`` directory everything but the fluxscale files, the ``*split.cal`` MSes and
the flux-calibration and imaging scripts.  An ASDM is never deleted, wherever it is; a
directory that is neither is refused.  Links are removed, never followed.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..layouts.scriptgen import CALIBRATION_SCRIPTS
from ..uid import uid_prefix

KEEP: dict[str, re.Pattern[str]] = {
    "eb": re.compile(".*(" + "|".join(re.escape(s) for s in CALIBRATION_SCRIPTS) + ")"),
    "calibrated": re.compile(
        r".*fluxscale|.*split\.cal|scriptForFluxCalibration\.py|scriptForImaging\.py"
    ),
}
"""What each kind of directory keeps, besides its ASDMs."""


@dataclass(frozen=True)
class Clearing:
    directory: Path
    kind: str  # "eb" or "calibrated"
    keep: tuple[Path, ...]
    delete: tuple[Path, ...]


def _is_asdm(path: Path) -> bool:
    return not path.is_symlink() and path.is_dir() and (path / "ASDM.xml").is_file()


def _kind(directory: Path, entries: list[Path]) -> str:
    if directory.name == "calibrated":
        return "calibrated"
    uids = {uid_prefix(p.name) for p in entries if _is_asdm(p) or KEEP["eb"].fullmatch(p.name)}
    if len(uids) == 1 and None not in uids:
        return "eb"
    raise InputError(
        "not an EB directory (one ASDM or *.scriptForCalibration.py) nor a calibrated/"
        " directory, so nothing is deleted",
        directory,
        fix="run it inside the EB directory or the SB's calibrated/ directory",
    )


def plan(directory: Path) -> Clearing:
    """What clearing ``directory`` keeps and deletes (reads only)."""
    directory = Path(os.path.abspath(directory))
    if not directory.is_dir():
        raise InputError("not a directory", directory, fix="give an EB or calibrated/ directory")
    entries = sorted(directory.iterdir())
    kind = _kind(directory, entries)
    keep = tuple(p for p in entries if _is_asdm(p) or KEEP[kind].fullmatch(p.name))
    return Clearing(directory, kind, keep, tuple(p for p in entries if p not in keep))


def apply(clearing: Clearing) -> None:
    for path in clearing.delete:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
