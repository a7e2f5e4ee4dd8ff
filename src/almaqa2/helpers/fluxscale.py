"""``qa2 fluxscale``: the flux densities CASA's fluxscale derived, per source, spw and EB
(SPEC §9, seed 002's ``qa2_fluxscale.sh``), to compare the EBs of an SB at a glance.

The lines are found anywhere in a file (a ``*.fluxscale`` output or a CASA log):

    Flux density for J1751+0939 in SpW=0 (freq=2.16276e+11 Hz) is: 2.22776 +/- 0.00677892 (SNR = 328.631, N = 9)
    Fitted spectrum for J1751+0939 with fitorder=1: Flux density = 2.19474 +/- 0.00107564 (freq=223.031 GHz) spidx=-0.549826 +/- 0.016824
"""  # noqa: E501

from __future__ import annotations

import io
import math
import re
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from almaqa2.atomic import write_atomically
from almaqa2.errors import Almaqa2Error, InputError
from almaqa2.uid import eb_of_name, short_name

THRESHOLD = 0.10
"""A flux density further than this fraction from what it is compared with is flagged."""

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_COUNT = r"\d{1,9}"  # spw ids, antenna counts, fit orders: a longer run is not CASA's
FLUX_LINE = re.compile(
    rf"Flux density for (?P<source>\S+) in SpW=(?P<spw>{_COUNT}) \(freq=(?P<freq>{_NUMBER}) Hz\)"
    rf" is: (?P<flux>{_NUMBER}) \+/- (?P<error>{_NUMBER})"
    rf" \(SNR = (?P<snr>{_NUMBER}|inf|nan), N = (?P<n>{_COUNT})\)"
)
FIT_LINE = re.compile(
    rf"Fitted spectrum for (?P<source>\S+) with fitorder=(?P<order>{_COUNT}): Flux density ="
    rf" (?P<flux>{_NUMBER}) \+/- (?P<error>{_NUMBER}) \(freq=(?P<freq>{_NUMBER}) GHz\)"
    r"(?: spidx(?:=|: a_1 \(spectral index\) =)"
    rf"(?P<spidx>{_NUMBER}) \+/- (?P<spidx_error>{_NUMBER}))?"
)
"""CASA 5 writes ``spidx=-0.55 +/- 0.017``; CASA 6.7 ``spidx: a_1 (spectral index) =-4.72
+/- 1.70 covariance matrix for the fit: ...`` (its higher orders and covariances unused)."""


class NoFluxError(Almaqa2Error):
    """The files hold no fluxscale result: the check did not find what it looks for."""

    exit_code = 1


@dataclass(frozen=True)
class Measurement:
    eb: str
    source: str
    spw: int
    freq_hz: float
    flux: float
    error: float
    snr: float
    n: int


@dataclass(frozen=True)
class Fit:
    eb: str
    source: str
    fitorder: int
    flux: float
    error: float
    freq_ghz: float
    spidx: float | None
    spidx_error: float | None

    def at(self, freq_ghz: float) -> float:
        """The fitted flux density at ``freq_ghz`` (a power law in frequency); NaN where
        a frequency is not positive (a failed fit reports freq=0)."""
        if freq_ghz <= 0 or self.freq_ghz <= 0:
            return math.nan
        ratio: float = (freq_ghz / self.freq_ghz) ** (self.spidx or 0.0)  # positive: real
        return self.flux * ratio


@dataclass(frozen=True)
class Row:
    """One spw of one source: each EB's measurement there."""

    spw: int
    ghz: float
    by_eb: dict[str, Measurement]

    @property
    def spread(self) -> float | None:
        """(highest - lowest) / mean of the EBs' flux densities: how far they disagree
        (None with one EB, where there is nothing to compare; NaN where the mean is 0)."""
        values = [m.flux for m in self.by_eb.values()]
        if len(values) < 2:
            return None
        mean = sum(values) / len(values)
        return (max(values) - min(values)) / mean if mean else math.nan


@dataclass(frozen=True)
class Outlier:
    """A measurement further than the threshold from what it is compared with: the median
    of the EBs in its spw, or, for an EB alone there, its own fitted spectrum."""

    measurement: Measurement
    reference: float  # Jy
    against: str  # "the median of the EBs" | "its fitted spectrum"

    @property
    def deviation(self) -> float:
        return (self.measurement.flux - self.reference) / self.reference

    def __str__(self) -> str:
        m = self.measurement
        return (
            f"{short_name(m.eb)} {m.source} spw {m.spw} ({m.freq_hz / 1e9:.3f} GHz):"
            f" {m.flux:.4g} Jy is {self.deviation:+.1%} from {self.against}"
            f" ({self.reference:.4g} Jy)"
        )

    def as_dict(self) -> dict[str, Any]:
        m = self.measurement
        return {
            "eb": m.eb, "source": m.source, "spw": m.spw, "freq_hz": m.freq_hz, "flux": m.flux,
            "reference": self.reference, "against": self.against, "deviation": self.deviation,
        }  # fmt: skip


@dataclass(frozen=True)
class Fluxes:
    ebs: tuple[str, ...]
    measurements: tuple[Measurement, ...]
    fits: tuple[Fit, ...]

    def by_spw(self, source: str) -> list[Row]:
        """The measurements of ``source``, one row per spw with every EB's, sorted."""
        rows: dict[tuple[int, float], dict[str, Measurement]] = {}
        for m in self.measurements:
            if m.source == source:
                rows.setdefault((m.spw, round(m.freq_hz / 1e9, 6)), {})[m.eb] = m
        return [Row(spw, ghz, by_eb) for (spw, ghz), by_eb in sorted(rows.items())]

    def outliers(self, threshold: float = THRESHOLD) -> list[Outlier]:
        """The measurements more than ``threshold`` (a fraction) from the median of their
        spw's EBs; an EB alone in its spw is compared with its fitted spectrum."""
        found = []
        for source in sorted({m.source for m in self.measurements}):
            for row in self.by_spw(source):
                values = sorted(m.flux for m in row.by_eb.values())
                for m in row.by_eb.values():
                    reference, against = statistics.median(values), "the median of the EBs"
                    if len(values) == 1:
                        fit = next((f for f in self.fits
                                    if (f.eb, f.source) == (m.eb, m.source)), None)  # fmt: skip
                        if fit is None:
                            continue
                        reference, against = fit.at(m.freq_hz / 1e9), "its fitted spectrum"
                    if reference and math.isfinite(reference):
                        outlier = Outlier(m, reference, against)
                        if abs(outlier.deviation) > threshold:
                            found.append(outlier)
        return found

    def as_dict(self, threshold: float = THRESHOLD) -> dict[str, Any]:
        return {
            "ebs": list(self.ebs),
            "measurements": [asdict(m) for m in self.measurements],
            "fits": [asdict(f) for f in self.fits],
            "spread": [
                {"source": source, "spw": row.spw, "ghz": row.ghz, "spread": row.spread}
                for source in sorted({m.source for m in self.measurements})
                for row in self.by_spw(source)
            ],
            "threshold": threshold,
            "outliers": [o.as_dict() for o in self.outliers(threshold)],
        }


def _optional(value: str | None) -> float | None:
    return None if value is None else float(value)


def parse(text: str, eb: str) -> tuple[list[Measurement], list[Fit]]:
    """The fluxscale results in ``text`` (pure), attributed to ``eb``."""
    measurements = [
        Measurement(
            eb,
            m["source"],
            int(m["spw"]),
            float(m["freq"]),
            float(m["flux"]),
            float(m["error"]),
            float(m["snr"]),
            int(m["n"]),
        )
        for m in FLUX_LINE.finditer(text)
    ]
    fits = [
        Fit(
            eb,
            m["source"],
            int(m["order"]),
            float(m["flux"]),
            float(m["error"]),
            float(m["freq"]),
            _optional(m["spidx"]),
            _optional(m["spidx_error"]),
        )
        for m in FIT_LINE.finditer(text)
    ]
    return measurements, fits


def eb_of(path: Path) -> str:
    """The EB a fluxscale file belongs to: from its name, else its directory's name."""
    return eb_of_name(path.name) or path.parent.name


def files_in(path: Path) -> list[Path]:
    """The fluxscale files of an EB directory, of an SB (its EB directories), or ``path``."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("not found", path, fix="give an EB or SB directory, or a fluxscale file")
    found = sorted(p for p in path.glob("*fluxscale") if p.is_file())
    found += sorted(p for p in path.glob("*/*fluxscale") if p.is_file())
    return found


def collect(results: Iterable[tuple[str, str]]) -> Fluxes | None:
    """The fluxscale results of ``(text, EB)`` pairs together; None if there is none."""
    measurements: list[Measurement] = []
    fits: list[Fit] = []
    for text, eb in results:
        found = parse(text, eb)
        measurements += found[0]
        fits += found[1]
    if not measurements:
        return None
    ebs = tuple(sorted({m.eb for m in measurements}))
    return Fluxes(ebs, tuple(measurements), tuple(fits))


def read(path: Path) -> Fluxes:
    """Every fluxscale result under ``path``; NoFluxError if there is none."""
    found = collect((f.read_text(errors="replace"), eb_of(f)) for f in files_in(path))
    if found is None:
        raise NoFluxError(
            "no 'Flux density for ... in SpW=...' line found",
            path,
            fix="give the EB's *.fluxscale file (CASA fluxscale writes it) or its directory",
        )
    return found


def plot(
    fluxes: Fluxes, out: Path | BinaryIO, threshold: float = THRESHOLD, title: str = ""
) -> Path | BinaryIO:
    """A PNG of flux density against frequency, one panel per source, one colour per EB
    (named short), each EB's fitted spectrum drawn through its points, each point labelled
    with its spw, and the outliers ringed in red."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib", fix="pip install 'almaqa2[plot]'") from None
    sources = sorted({m.source for m in fluxes.measurements})
    outliers = fluxes.outliers(threshold)
    fig, axes = plt.subplots(len(sources), 1, figsize=(7, 3.2 * len(sources)), squeeze=False)
    for ax, source in zip(axes[:, 0], sources, strict=True):
        for i, eb in enumerate(fluxes.ebs):
            points = sorted(
                (m.freq_hz / 1e9, m.flux, m.error)
                for m in fluxes.measurements
                if m.eb == eb and m.source == source
            )
            if not points:
                continue
            colour = f"C{i}"
            freqs, flux, error = zip(*points, strict=True)
            ax.errorbar(freqs, flux, yerr=error, fmt="o", color=colour, label=short_name(eb))
            for m in fluxes.measurements:
                if m.eb == eb and m.source == source:
                    ax.annotate(f"spw {m.spw}", (m.freq_hz / 1e9, m.flux), fontsize="x-small",
                                xytext=(4, 4), textcoords="offset points")  # fmt: skip
            for fit in (f for f in fluxes.fits if f.eb == eb and f.source == source):
                low, high = min(freqs), max(freqs)
                grid = [low + (high - low) * k / 50 for k in range(51)]
                if math.isfinite(fit.at(low)):
                    ax.plot(grid, [fit.at(g) for g in grid], "-", color=colour, alpha=0.7)
        bad = [o.measurement for o in outliers if o.measurement.source == source]
        if bad:
            ax.scatter([m.freq_hz / 1e9 for m in bad], [m.flux for m in bad], s=220,
                       facecolors="none", edgecolors="red", linewidths=2,
                       label=f"outlier (> {threshold:.0%})", zorder=3)  # fmt: skip
        ax.set_title(source)
        ax.set_xlabel("frequency (GHz)")
        ax.set_ylabel("flux density (Jy)")
        ax.legend(fontsize="small")
    fig.suptitle(f"fluxscale{': ' + title if title else ''} ({len(fluxes.ebs)} EBs)")
    fig.tight_layout()
    drawn = io.BytesIO()  # written whole or not at all (a full disk left half a PNG)
    fig.savefig(drawn, dpi=100, format="png")
    plt.close(fig)
    if isinstance(out, Path):
        return write_atomically(out, drawn.getvalue())
    out.write(drawn.getvalue())
    return out
