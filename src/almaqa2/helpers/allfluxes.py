"""``qa2 allfluxes``: the ``allFluxes.txt`` that ``scriptForFluxCalibration.py`` scales the
EBs by (SPEC §9, seed 004), one line per calibrator, spw and EB::

    "J1626-2951" 0 230.56 1.02 1.02 2014-03-23T06:42:25 /path/to/uid___A002_X7d44e7_X13d1.ms.split.cal

(source, spw, frequency in GHz, the EB's flux density, the weighted mean over the EBs with
weights 1/err², the EB's start, its MS).  Made from the EBs' fluxscale results; reading a
file and writing it back gives the same bytes, so a hand-edited file can be checked.  A
flux density further than ``threshold`` from its EB's fitted spectrum is flagged.
"""  # noqa: E501

from __future__ import annotations

import logging
import math
import os
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from almaqa2.atomic import write_atomically
from almaqa2.data import ms
from almaqa2.errors import InputError
from almaqa2.helpers.fluxscale import THRESHOLD, Fit, Fluxes
from almaqa2.helpers.fluxscale import read as read_fluxes
from almaqa2.uid import eb_of_name

log = logging.getLogger(__name__)

NAME = "allFluxes.txt"
UNKNOWN_TIME = "unknown"


@dataclass(frozen=True)
class Row:
    """One line; numbers are kept as written, so that a file reads and writes back as is."""

    source: str
    spw: str
    freq_ghz: str
    flux: str
    mean: str
    time: str
    ms: str

    def line(self) -> str:
        numbers = f"{self.spw} {self.freq_ghz} {self.flux} {self.mean}"
        return f'"{self.source}" {numbers} {self.time} {self.ms}'

    def as_dict(self) -> dict[str, Any]:
        """The row with its numbers as numbers (the text keeps them as written)."""
        return {
            **asdict(self),
            "spw": int(self.spw),
            "freq_ghz": float(self.freq_ghz),
            "flux": float(self.flux),
            "mean": float(self.mean),
        }


def read(text: str, where: str = NAME) -> list[Row]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            source, spw, freq, flux, mean, time, path = shlex.split(line)
            float(freq), float(flux), float(mean), int(spw)
        except ValueError:
            raise InputError(
                f"line {number} is not '\"source\" spw GHz flux mean time ms'",
                where,
                fix="correct it, or make the file again with qa2 allfluxes --recompute",
            ) from None
        rows.append(Row(source, spw, freq, flux, mean, time, path))
    return rows


def write(rows: list[Row]) -> str:
    return "".join(row.line() + "\n" for row in rows)


def _start_of(split_cal: Path) -> str:
    """The EB's start (UTC) read from its MS, when casacore can read it."""
    if not ms.available() or not split_cal.is_dir():
        return UNKNOWN_TIME
    try:
        return ms.describe(split_cal).start.strftime("%Y-%m-%dT%H:%M:%S")
    except InputError as exc:
        log.warning("%s", exc)
        return UNKNOWN_TIME


def compute(fluxes: Fluxes, calibrated: Path) -> list[Row]:
    """One row per EB, source and spw, with the weighted mean of the EBs (pure but for the
    MS start times)."""
    weights: dict[tuple[str, int], tuple[float, float]] = {}  # (source, spw): (Σw·S, Σw)
    for m in fluxes.measurements:
        w = 1 / m.error**2 if m.error > 0 else 0.0
        total, norm = weights.get((m.source, m.spw), (0.0, 0.0))
        weights[(m.source, m.spw)] = (total + w * m.flux, norm + w)
    starts = {eb: _start_of(calibrated / f"{eb}.ms.split.cal") for eb in fluxes.ebs}
    rows = []
    for m in sorted(fluxes.measurements, key=lambda m: (m.source, m.spw, starts[m.eb], m.eb)):
        total, norm = weights[(m.source, m.spw)]
        mean = total / norm if norm else m.flux
        path = calibrated / f"{m.eb}.ms.split.cal"
        rows.append(
            Row(
                m.source,
                str(m.spw),
                f"{m.freq_hz / 1e9:.2f}",
                f"{m.flux:.4f}",
                f"{mean:.4f}",
                starts[m.eb],
                str(path),
            )
        )
    return rows


@dataclass(frozen=True)
class Flag:
    row: Row
    fitted: float
    deviation: float  # relative, signed

    def __str__(self) -> str:
        return (
            f"{self.row.source} spw {self.row.spw} ({self.row.freq_ghz} GHz) in"
            f" {Path(self.row.ms).name}: {self.row.flux} Jy is {self.deviation:+.1%} from the"
            f" fitted spectrum ({self.fitted:.4f} Jy)"
        )


def flags(rows: list[Row], fits: tuple[Fit, ...], threshold: float = THRESHOLD) -> list[Flag]:
    """Rows further than ``threshold`` from their EB's fitted spectrum of that source."""
    by_key = {(f.eb, f.source): f for f in fits}
    found = []
    for row in rows:
        fit = by_key.get((eb_of_name(Path(row.ms).name) or "", row.source))
        if fit is None:
            continue
        fitted = fit.at(float(row.freq_ghz))
        if not math.isfinite(fitted):
            continue
        deviation = (float(row.flux) - fitted) / fitted if fitted else math.inf
        if abs(deviation) > threshold:
            found.append(Flag(row, fitted, deviation))
    return found


def save(text: str, path: Path) -> None:
    """Write ``path`` whole or not at all; a previous file is kept as ``<name>.previous``."""
    previous = path.with_name(f"{path.name}.previous")
    if path.exists():
        previous.unlink(missing_ok=True)
        os.link(path, previous)  # the old file stays under this name when replaced
    write_atomically(path, text)


@dataclass(frozen=True)
class Outcome:
    path: Path
    rows: list[Row]
    flags: list[Flag]
    written: bool


def allfluxes(
    calibrated: Path, recompute: bool = False, threshold: float = THRESHOLD, dry_run: bool = False
) -> Outcome:
    """Make ``allFluxes.txt`` in ``calibrated`` from the EBs' fluxscale results, or read the
    one there (a reducer may have edited it), and flag it against the fitted spectra."""
    calibrated = Path(os.path.abspath(calibrated))
    path = calibrated / NAME
    fluxes = read_fluxes(calibrated)
    if path.exists() and not recompute:
        rows, written = read(path.read_text(errors="replace"), str(path)), False
    else:
        rows, written = compute(fluxes, calibrated), not dry_run
        if written:
            save(write(rows), path)
    return Outcome(path, rows, flags(rows, fluxes.fits, threshold), written)
