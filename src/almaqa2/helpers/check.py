"""``qa2 check``: the final checklist of a reduction, as a report (SPEC §9), from the list
of its layout (``LISTS``).  Each item is one row: where it looks and what must be true there.

NRAO (seed 004).  Per EB (``Calibration_X*``): one clean CASA log (no SEVERE line), the
complete ``<EB>.ms.scriptForCalibration.py`` (its last ``thesteps`` is ``[]``: every step
runs) and a ``qa2/`` directory.  Per MOUS: a README, ``Imaging/scriptForImaging.py``, with
several EBs ``Combination/calibrated/scriptForFluxCalibration.py`` and a combination log,
an imaging log, a ``*.pbcor.fits`` and a primary-beam image (``*.flux.fits``/``*.pb.fits``).

Allegro (seed 002).  Per EB: one clean ``casapy-*.log`` (or ``casa-*.log``), the complete
calibration script and ``qa2/``.  Per SB: the SB checklist and one per EB beside origpath,
the README header there with its required fields filled, the scriptForPI there, and in
``calibrated/`` the imaging script and, with several EBs, the flux calibration script and
each EB's ``*.split.cal`` and ``*.fluxscale`` linked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from almaqa2 import plainfile
from almaqa2.errors import InputError, existing_dir
from almaqa2.package.layouts import recognise
from almaqa2.package.readme import blank_fields

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


def _one_clean_log(directory: Path, *patterns: str) -> tuple[bool, str]:
    patterns = patterns or ("casa-*.log",)
    logs = sorted(p for pattern in patterns for p in directory.glob(pattern))
    if not logs:
        return False, f"no {' or '.join(patterns)}"
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


Check = Callable[[Path, str], tuple[bool, str]]
"""(directory, the EB's UID, or at SB level the EBs' UIDs) -> (ok, detail)."""

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


def _header_filled(directory: Path) -> tuple[bool, str]:
    header = directory / "README.header.txt"
    if not header.is_file():
        return False, "README.header.txt is missing"
    try:
        blank = blank_fields(plainfile.text(header, "README header"))
    except InputError as exc:  # the wrong file: the package would refuse it
        return False, exc.what
    return (False, f"{', '.join(blank)} blank") if blank else (True, header.name)


def _linked_per_eb(directory: Path, uids: list[str]) -> tuple[bool, str]:
    missing = [
        f"{uid}{suffix}"
        for uid in uids
        for suffix in (".ms.split.cal", ".ms.split.cal.fluxscale")
        if not (directory / f"{uid}{suffix}").exists()
    ]
    return (False, "missing " + ", ".join(missing)) if missing else (True, "every EB's")


ALLEGRO_EB_ITEMS: tuple[tuple[str, Check], ...] = (
    ("clean CASA log", lambda d, uid: _one_clean_log(d, "casapy-*.log", "casa-*.log")),
    EB_ITEMS[1],
    EB_ITEMS[2],
)
ALLEGRO_SB_ITEMS: tuple[tuple[str, str, bool, Check], ...] = (
    ("SB checklist", "..", False, lambda d, _: _any(d, f"Checklist_SB_{d.resolve().name}.txt")),
    ("EB checklists", "..", False, lambda d, uids: _checklists(d, uids.split())),
    ("README header filled", "..", False, lambda d, _: _header_filled(d)),
    ("scriptForPI", "..", False, lambda d, _: _file(d / "scriptForPI.py")),
    ("imaging script", "calibrated", False, lambda d, _: _file(d / "scriptForImaging.py")),
    ("flux calibration script", "calibrated", True,
     lambda d, _: _file(d / "scriptForFluxCalibration.py")),
    ("EBs linked for the combination", "calibrated", True,
     lambda d, uids: _linked_per_eb(d, uids.split())),
)  # fmt: skip


def _checklists(directory: Path, uids: list[str]) -> tuple[bool, str]:
    sb = directory.resolve().name
    missing = [u for u in uids if not (directory / f"Checklist_SB_{sb}_{u}.txt").is_file()]
    if missing:
        return False, "no checklist for " + ", ".join(missing)
    return True, f"{len(uids)} EB checklist(s)"


LISTS = {
    "nrao": ("NRAO (seed 004)", EB_ITEMS, MOUS_ITEMS),
    "allegro": ("Allegro (seed 002)", ALLEGRO_EB_ITEMS, ALLEGRO_SB_ITEMS),
}
"""The checklist of each layout; any other layout gets NRAO's."""


def check(origpath: Path) -> tuple[str, list[Verdict]]:
    """The final checklist applied to the reduction at ``origpath`` (the list's name) and
    every item of it."""
    origpath = existing_dir(origpath, "the reduction", "give the MOUS reduction directory")
    reduction = recognise(origpath)
    name, eb_items, sb_items = LISTS.get(reduction.layout, LISTS["nrao"])
    results = []
    for eb in reduction.ebs:
        directory = origpath / (eb.dir or ".")
        for item, test in eb_items:
            ok, detail = test(directory, eb.uid)
            results.append(Verdict(item, f"{eb.dir}", ok, detail))
    several = len(reduction.ebs) > 1
    uids = " ".join(eb.uid for eb in reduction.ebs)
    for item, below, only_several, test in sb_items:
        if only_several and not several:
            continue
        ok, detail = test(origpath / below, uids)
        results.append(Verdict(item, below, ok, detail))
    return name, results
