"""``qa2 check``: seed 004's final checklist of an NRAO-layout reduction, as a report
(SPEC §9).  Each item is one row of ``ITEMS``: where it looks and what must be true there.

Per EB (``Calibration_X*``): one clean CASA log (no SEVERE line), the complete
``<EB>.ms.scriptForCalibration.py`` (its last ``thesteps`` is ``[]``: every step runs) and a
``qa2/`` directory.  Per MOUS: a README, ``Imaging/scriptForImaging.py``, with several EBs
``Combination/calibrated/scriptForFluxCalibration.py`` and a combination log, an imaging
log, a ``*.pbcor.fits`` and a primary-beam image (``*.flux.fits`` or ``*.pb.fits``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from almaqa2.errors import existing_dir
from almaqa2.package.layouts import recognise

_THESTEPS = re.compile(r"^\s*thesteps\s*=\s*(\[.*?\])", re.M)
_SEVERE = re.compile(r"\bSEVERE\b")


@dataclass(frozen=True)
class Verdict:
    item: str
    where: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _one_clean_log(directory: Path) -> tuple[bool, str]:
    logs = sorted(directory.glob("casa-*.log"))
    if not logs:
        return False, "no casa-*.log"
    if len(logs) > 1:
        return (
            False,
            f"{len(logs)} CASA logs: keep only the clean one ({', '.join(p.name for p in logs)})",
        )
    with logs[0].open(errors="replace") as log:
        severe = sum(1 for line in log if _SEVERE.search(line))
    if severe:
        return False, f"{logs[0].name} has {severe} SEVERE line(s)"
    return True, logs[0].name


def _file(path: Path) -> tuple[bool, str]:
    """``path`` exists."""
    return (True, path.name) if path.is_file() else (False, f"{path.name} is missing")


def _any(directory: Path, *patterns: str) -> tuple[bool, str]:
    found = sorted(p.name for pattern in patterns for p in directory.glob(pattern))
    return (True, ", ".join(found)) if found else (False, f"no {' or '.join(patterns)}")


def _runs_all_steps(script: Path) -> tuple[bool, str]:
    if not script.is_file():
        return False, f"{script.name} is missing"
    assignments = _THESTEPS.findall(script.read_text(errors="replace"))
    if not assignments:
        return False, "no 'thesteps = []' line"
    if re.fullmatch(r"\[\s*\]", assignments[-1]) is None:
        return False, f"thesteps = {assignments[-1]}: not every step runs"
    return True, "thesteps = []"


Check = Callable[[Path, str], tuple[bool, str]]  # (directory, EB uid) -> (ok, detail)

EB_ITEMS: tuple[tuple[str, Check], ...] = (
    ("clean CASA log", lambda d, uid: _one_clean_log(d)),
    (
        "complete calibration script",
        lambda d, uid: _runs_all_steps(d / f"{uid}.ms.scriptForCalibration.py"),
    ),
    (
        "qa2 directory",
        lambda d, uid: (True, "qa2/") if (d / "qa2").is_dir() else (False, "no qa2/"),
    ),
)
MOUS_ITEMS: tuple[tuple[str, str, bool, Check], ...] = (
    # (item, directory below origpath, only with several EBs, check)
    ("README", ".", False, lambda d, _: _any(d, "README*")),
    ("imaging script", "Imaging", False, lambda d, _: _file(d / "scriptForImaging.py")),
    ("flux calibration script", "Combination/calibrated", True,
     lambda d, _: _file(d / "scriptForFluxCalibration.py")),
    ("combination log", "Combination/calibrated", True, lambda d, _: _any(d, "casa-*.log")),
    ("imaging log", "Imaging", False, lambda d, _: _any(d, "casa-*.log")),
    ("primary-beam-corrected image", "Imaging", False, lambda d, _: _any(d, "*.pbcor.fits")),
    ("primary-beam image", "Imaging", False, lambda d, _: _any(d, "*.flux.fits", "*.pb.fits")),
)  # fmt: skip


def check(origpath: Path) -> list[Verdict]:
    """Every item of the final checklist for the reduction at ``origpath``."""
    origpath = existing_dir(origpath, "the reduction", "give the MOUS reduction directory")
    reduction = recognise(origpath)
    results = []
    for eb in reduction.ebs:
        directory = origpath / (eb.dir or ".")
        for item, test in EB_ITEMS:
            ok, detail = test(directory, eb.uid)
            results.append(Verdict(item, f"{eb.dir}", ok, detail))
    several = len(reduction.ebs) > 1
    for item, below, only_several, test in MOUS_ITEMS:
        if only_several and not several:
            continue
        ok, detail = test(origpath / below, "")
        results.append(Verdict(item, below, ok, detail))
    return results
