"""FITS products: the header summary the README shows, and PB/mask compression.

Compression uses ISA-L's gzip (python-isal): the output is standard gzip, which any
gunzip and astropy read, written about eight times faster than zlib at the same ratio on
primary-beam cubes (benchmarks/ms_bench.py prints both).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from isal import igzip

from almaqa2.errors import InputError, reason

LEVEL = 2  # ISA-L's default; its level 3 is several times slower for no smaller files
_CHUNK = 1 << 22


@dataclass(frozen=True)
class FitsInfo:
    """The facts of one image the README lists (angles in arcsec, frequency in Hz)."""

    object: str
    bunit: str
    shape: tuple[tuple[str, int], ...]  # (axis type, length), FITS axis order
    rest_hz: float | None
    beam: tuple[float, float, float] | None  # major, minor (arcsec), position angle (deg)
    beams: int  # 0 for one beam in the header, else the number of per-channel beams


def summary(path: Path) -> FitsInfo:
    """Read the header facts of the FITS image ``path`` (``.fits`` or ``.fits.gz``)."""
    from astropy.io import fits  # imported when needed: it takes longer than a fake package

    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdus:
            header = hdus[0].header
            beams = hdus["BEAMS"].data if "BEAMS" in hdus else None
            info = _info(header, beams)
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise InputError(
            f"this product is not a readable FITS image ({reason(exc)})",
            path,
            fix="export it again with exportfits, or remove it from the reduction",
        ) from exc
    return info


def _info(header: Any, beams: Any) -> FitsInfo:
    naxis = int(header.get("NAXIS", 0))
    shape = tuple(
        (str(header.get(f"CTYPE{i}", f"AXIS{i}")).strip(), int(header[f"NAXIS{i}"]))
        for i in range(1, naxis + 1)
    )
    beam = None
    count = 0
    major, minor = _number(header, "BMAJ"), _number(header, "BMIN")
    if major is not None and minor is not None:
        beam = (major * 3600, minor * 3600, _number(header, "BPA") or 0.0)
    elif beams is not None and len(beams):
        # CASA writes per-channel beams (arcsec) to a BEAMS table; show the median one
        mid = sorted(range(len(beams)), key=lambda i: beams["BMAJ"][i])[len(beams) // 2]
        beam = (float(beams["BMAJ"][mid]), float(beams["BMIN"][mid]), float(beams["BPA"][mid]))
        count = len(beams)
    return FitsInfo(
        object=str(header.get("OBJECT", "")).strip(),
        bunit=str(header.get("BUNIT", "")).strip(),
        shape=shape,
        rest_hz=_number(header, "RESTFRQ", "RESTFREQ"),
        beam=beam,
        beams=count,
    )


def _number(header: Any, *keys: str) -> float | None:
    """The first of ``keys`` the header holds as a number; a text value (some exports
    write ``BMAJ = 'n/a'``) counts as absent."""
    for key in keys:
        value = header.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


class Sink(Protocol):
    """Where compressed bytes go: a file open for writing, or a count of them (gzip puts
    the sink's ``name`` in its header)."""

    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...


def compress(fin: BinaryIO, fout: Sink, mtime: float) -> None:
    """Write the gzip of ``fin`` to ``fout``, streaming (``mtime`` goes in the gzip header)."""
    with igzip.IGzipFile(fileobj=fout, mode="wb", compresslevel=LEVEL, mtime=int(mtime)) as out:
        shutil.copyfileobj(fin, out, _CHUNK)
