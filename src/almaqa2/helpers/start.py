"""``qa2 start``: set up the reduction area of an SB (SPEC §9, seeds 002 and 004).

Allegro (seed 002)::

    <SB>/<SB>/<EB short>/<ASDM>    one directory per EB, holding its ASDM
    <SB>/<SB>/calibrated/
    <SB>/Checklist_SB_<SB>.txt, <SB>/Checklist_SB_<SB>_<EB uid>.txt, README.header.txt,
    <SB>/scriptForPI.py, <SB>/packaging/{ticket,hard}/run_packaging.py

NRAO (seed 004)::

    <MOUS uid>/Calibration_<EB short>/<ASDM>, Combination/calibrated (several EBs), Imaging/

The ASDMs come from ``--archive`` (``<archive>/<SB>/uid___*``: linked, the archive stays
as it is) or from the current directory (moved in).  The area is built under a hidden name
and renamed when complete; an existing directory is never touched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from almaqa2 import destination
from almaqa2.errors import InputError
from almaqa2.package import package_dir
from almaqa2.package.readme import TEMPLATE
from almaqa2.package.rules import AREA_LAYOUTS as LAYOUTS
from almaqa2.uid import check_project_code, is_uid, short_name, to_fs

EB_CHECKLIST = """\
EB checklist: {sb}, execution block {eb}
Project code: {project}
Reducer:
Observation dates and total integration time (from listobs):
Antennas, band(s), TDM/FDM, precipitable water vapour:

DATA IMPORT
[ ] importasdm ran with the options the script generator chose (asis, lazy, ...)

A PRIORI CALIBRATION
[ ] fixplanets / SYSCAL time fix / other fixes needed?     yes / no
[ ] WVR and Tsys tables looked at, antenna positions applied if needed
[ ] weights looked at

FLAGGING AND MODELS
[ ] edge channels and atmospheric lines flagged
[ ] flux calibrator model: resolved planet or quasar, reference of its flux
[ ] model amplitude against uv distance looked at

BANDPASS
[ ] reference antenna good; bandpass solutions smooth in time and frequency

GAIN CALIBRATION
[ ] phase (int, inf) and amplitude solutions smooth; calibrator flux ratios constant
[ ] fluxscale results pasted below (qa2 fluxscale prints them)

APPLYCAL AND SPLIT
[ ] applycal and the last split produced the .ms.split.cal

QA2 REPORT
[ ] qa2/ report made and looked at

FLUX UPLOAD
[ ] calibrator fluxes uploaded where the flux calibration is good

Comments:
"""

SB_CHECKLIST = """\
SB checklist: {sb}
Project code: {project}
Execution blocks: {ebs}
Reducer:

[ ] every EB checklist complete
[ ] fluxes of the EBs compared (qa2 fluxscale) and equalised (qa2 fluxequal, allFluxes.txt)
[ ] EBs combined: scriptForFluxCalibration.py
[ ] images made: scriptForImaging.py; rms and beam against the requested ones
[ ] README.header.txt filled in for the PI
[ ] final checklist passes (qa2 check)

Comments:
"""

SCRIPT_FOR_PI = """\
# scriptForPI.py for {sb}: replace this file by the scriptForPI of the current Cycle from
# the ALMA QA2 repository before packaging; the PI runs it to regenerate the calibrated data.
"""

RUN_PACKAGING = """\
\"\"\"Package {sb} ({mode} mode): python run_packaging.py [fake|ticket|copy|hard]\"\"\"
import sys

from QA2_Packaging_module import QA_Packager

QA_Packager(
    origpath={origpath!r},
    readme={readme!r},
    packpath={packpath!r},
    append="",
    mode=sys.argv[1] if len(sys.argv) > 1 else {mode!r},
    style={style!r},
    PIscript={pi_script!r},
)
"""


@dataclass(frozen=True)
class Area:
    sb: str
    layout: str
    path: Path
    ebs: tuple[str, ...]
    tree: tuple[str, ...]  # what it holds, from its parent (the ASDMs, not their contents)

    def as_dict(self) -> dict[str, Any]:
        return {"sb": self.sb, "layout": self.layout, "path": str(self.path),
                "ebs": list(self.ebs), "tree": list(self.tree)}  # fmt: skip


def _asdms(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if is_uid(p.name) and (p / "ASDM.xml").is_file())


def sbs_in(archive: Path) -> list[str]:
    """The SBs of an archive directory: its subdirectories that hold ASDMs."""
    return sorted(p.name for p in archive.iterdir() if p.is_dir() and _asdms(p))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def start(
    sb: str,
    into: Path,
    layout: str = "allegro",
    archive: Path | None = None,
    project: str | None = None,
    style: str = "cycle4-nopipe",
    dry_run: bool = False,
) -> Area:
    """Set up the reduction area of ``sb`` in ``into``; returns it (``dry_run``: with the
    tree it would have, built in a temporary directory and removed)."""
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout '{layout}'", fix="use allegro or nrao")
    into = Path(os.path.abspath(into))  # as typed, not resolved: it may name the project
    destination.planned(into, "the directory to set up in")
    if archive is not None:  # the links live deeper than where a relative path was typed
        archive = Path(os.path.abspath(archive))
    source = archive / sb if archive is not None else into
    asdms = _asdms(source) if source.is_dir() else []
    if not asdms:
        raise InputError(
            "no ASDM (uid___* directory holding ASDM.xml) found",
            source,
            fix="download the raw data first (qa2 download), or give --archive",
        )
    name = to_fs(sb) if layout == "nrao" else sb
    if layout == "allegro":
        project = check_project_code(project or _project_of(into))
    target = into / name
    if target.exists():
        raise InputError(
            "the reduction area exists already, so it is not touched",
            target,
            fix="remove it or choose another directory",
        )
    ebs = tuple(p.name for p in asdms)
    with (
        contextlib.nullcontext(into) if dry_run else destination.made(into),
        _scratch(target, dry_run) as scratch,
    ):
        top = scratch / name
        eb_dirs = (
            _allegro(top, sb, ebs, project or "", style, target)
            if layout == "allegro"
            else _nrao(top, ebs)
        )
        for asdm, eb_dir in zip(asdms, eb_dirs, strict=True):
            (top / eb_dir / asdm.name).symlink_to(asdm)  # the archive's, or a stand-in
        tree = _tree(scratch)
        if not dry_run:
            os.rename(top, target)
    if archive is None and not dry_run:  # moved in only once the area is in place
        for asdm, eb_dir in zip(asdms, eb_dirs, strict=True):
            stand_in = target / eb_dir / asdm.name
            stand_in.unlink()
            os.rename(asdm, stand_in)
    return Area(name, layout, target, ebs, tree)


@contextlib.contextmanager
def _scratch(target: Path, dry_run: bool) -> Iterator[Path]:
    """Where the area is built, removed on the way out: beside it, whence it is renamed
    into place (an error names a path as it was to be placed, the scratch being hidden
    and gone with the run); for a dry run, a temporary directory elsewhere."""
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="qa2-start-") as scratch:
            yield Path(scratch)
    else:
        with package_dir.staging(target, becomes=target.parent) as scratch:
            yield scratch


def _tree(top: Path) -> tuple[str, ...]:
    """Everything below ``top``, sorted; links (the ASDMs) listed, not entered."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath).relative_to(top)
        found += [(here / name).as_posix() for name in dirnames + filenames]
    return tuple(sorted(found))


def _allegro(
    top: Path, sb: str, ebs: tuple[str, ...], project: str, style: str, final: Path
) -> list[Path]:
    """Make the Allegro tree in ``top`` (to be renamed ``final``); the EB dirs below it."""
    eb_dirs = [Path(sb, short_name(eb)) for eb in ebs]
    for directory in (*eb_dirs, Path(sb, "calibrated")):
        (top / directory).mkdir(parents=True)
    fill = {"sb": sb, "project": project, "ebs": ", ".join(ebs)}
    _write(top / f"Checklist_SB_{sb}.txt", SB_CHECKLIST.format(**fill))
    for eb in ebs:
        _write(top / f"Checklist_SB_{sb}_{eb}.txt", EB_CHECKLIST.format(**fill, eb=eb))
    header = TEMPLATE.replace("Project code:\n", f"Project code: {project}\n").replace(
        "SB name:\n", f"SB name: {sb}\n"
    )
    _write(top / "README.header.txt", header)
    _write(top / "scriptForPI.py", SCRIPT_FOR_PI.format(sb=sb))
    for mode in ("ticket", "hard"):
        where = final / "packaging" / mode
        script = RUN_PACKAGING.format(
            sb=sb,
            mode=mode,
            origpath=str(final / sb),
            readme=str(final / "README.header.txt"),
            packpath=str(where / project),
            style=style,
            pi_script=str(final / "scriptForPI.py"),
        )
        _write(top / "packaging" / mode / "run_packaging.py", script)
    return eb_dirs


def _nrao(top: Path, ebs: tuple[str, ...]) -> list[Path]:
    """Make the NRAO tree in ``top``; the EB dirs below it."""
    eb_dirs = [Path(f"Calibration_{short_name(eb)}") for eb in ebs]
    extra = [Path("Combination", "calibrated")] if len(ebs) > 1 else []
    for directory in (*eb_dirs, *extra, Path("Imaging")):
        (top / directory).mkdir(parents=True)
    return eb_dirs


def _project_of(path: Path) -> str:
    """A project code among the names of ``path`` and its parents (Allegro projects)."""
    for part in reversed(path.parts):
        try:
            return check_project_code(part)
        except InputError:
            continue
    raise InputError(
        "the project code is not in the path of this directory",
        path,
        fix="give it with --project 2013.1.12345.S",
    )
