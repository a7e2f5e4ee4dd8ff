"""The script-generator layout (seed 000): one directory per EB, or one EB flat in origpath.

An EB directory is a direct subdirectory of origpath whose MSes, ASDM or calibration
script all carry one EB UID.  A directory with several UIDs (``calibrated/``,
``Combination/``) holds combined products and is not an EB directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from almaqa2.errors import InputError
from almaqa2.package.scan import Kind, SourceEntry
from almaqa2.uid import short_name, uid_prefix

CALIBRATION_SCRIPTS = (".scriptForCalibration.py", ".scriptForSDcalibration.py")
"""An EB's calibration script: interferometric or single-dish (total power)."""


@dataclass(frozen=True)
class EB:
    uid: str
    dir: PurePosixPath | None  # relative to origpath; PurePosixPath() when flat; None: no
    # directory of its own (pipeline products, staged packages)

    @property
    def short(self) -> str:
        return short_name(self.uid)


def _marks(entry: SourceEntry) -> str | None:
    """The EB UID that ``entry`` proves present (an MS, an ASDM or a calibration script)."""
    uid = uid_prefix(entry.name)
    if uid is None:
        return None
    rest = entry.name[len(uid) :]
    if entry.kind is Kind.TABLE and rest in (".ms", ".ms.split", ".ms.split.cal"):
        return uid
    if entry.kind is Kind.ASDM and rest == "":
        return uid
    if entry.kind is Kind.FILE and rest.endswith(CALIBRATION_SCRIPTS):
        return uid
    return None


def find_ebs(root: Path, entries: tuple[SourceEntry, ...]) -> tuple[EB, ...]:
    """The EBs of the reduction at ``root``, sorted by directory."""
    uids_by_dir: dict[PurePosixPath, set[str]] = {}
    for entry in entries:
        if len(entry.rel.parts) > 2:
            continue
        uid = _marks(entry)
        if uid is not None:
            uids_by_dir.setdefault(entry.rel.parent, set()).add(uid)
    flat = uids_by_dir.get(PurePosixPath(), set())
    if len(flat) == 1:
        return (EB(flat.pop(), PurePosixPath()),)
    ebs = tuple(
        EB(next(iter(uids)), d)
        for d, uids in sorted(uids_by_dir.items())
        if d != PurePosixPath() and len(uids) == 1 and d.name != "calibrated"
    )
    seen: dict[str, PurePosixPath | None] = {}
    for eb in ebs:
        if eb.uid in seen:
            raise InputError(
                f"EB {eb.uid} is in two directories, {seen[eb.uid]} and {eb.dir}",
                root,
                fix="keep one of them in the reduction directory",
            )
        seen[eb.uid] = eb.dir
    if not ebs:
        raise InputError(
            "no execution block found (no uid___*.ms*, ASDM or *.scriptForCalibration.py"
            " in origpath or its subdirectories)",
            root,
            fix="give the SB's reduction directory, which holds one directory per EB",
        )
    return ebs
