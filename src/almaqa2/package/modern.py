"""The naming of deliveries since Cycle 5 (SPEC §4.1), as the archive's listings show it.

Every member-level file is prefixed ``member.<MOUS>.``; a file that belongs to one EB
(``<EB>.ms.scriptForCalibration.py``, ``<EB>.qa0_report.pdf``) keeps its name; an EB's
calibration directory and its plots travel as ``<EB>.calibration.tgz`` and
``<EB>.calibration.plots.tgz``, its logs as ``member.<MOUS>.<EB>.log.tgz``, the other logs as
``member.<MOUS>.<dir>.log.tgz`` (dir: the SB-level directory they were in, e.g. Imaging, or
origpath's own name), CASA mask images as ``.mask.tgz`` and primary-beam images as
``.pb.fits.gz``.  The tables are ``rules.MODERN_BUNDLES`` and ``rules.MODERN_RENAMES``.
Pure: a destination of the older layout in, the delivered name (and tgz) out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from almaqa2.package.rules import MODERN_BUNDLES, MODERN_KEEPS, MODERN_RENAMES


@dataclass(frozen=True)
class Bundle:
    """A tgz of the package (below the member directory) and a path inside it."""

    path: PurePosixPath
    inside: str


def prefixed(dest: PurePosixPath, mous: str) -> PurePosixPath:
    """``dest`` as delivered: its file name under the subdirectory carrying
    ``member.<MOUS>.``, unless it belongs to one EB."""
    sub, name, *rest = dest.parts
    member = f"member.{mous}"
    if name.startswith((f"{mous}.", f"{mous}_")):
        name = f"member.{name}"
    elif not name.startswith(f"{member}.") and not MODERN_KEEPS.match(name):
        name = f"{member}.{name}"
    for old, new in MODERN_RENAMES:
        if name.endswith(old):
            name = name.removesuffix(old) + new
    return PurePosixPath(sub, name, *rest)


def bundle_of(dest: PurePosixPath, top: str, mous: str) -> Bundle | None:
    """The tgz that ``dest`` travels in, if any; ``top``: the SB-level directory of its
    source (origpath's own name when it lay directly in origpath)."""
    for pattern, archive, inside in MODERN_BUNDLES:
        found = pattern.fullmatch(dest.as_posix())
        if found:
            fill = {**found.groupdict(), "m": f"member.{mous}", "top": top}
            return Bundle(PurePosixPath(archive.format(**fill)), inside.format(**fill))
    return None
