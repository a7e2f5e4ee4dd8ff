"""The naming of deliveries since Cycle 5 (SPEC §4.1), as the archive's listings show it.

Every member-level file is prefixed ``member.<MOUS>.``; an EB's calibration directory and
its plots travel as ``<EB>.calibration.tgz`` and ``<EB>.calibration.plots.tgz``, its logs
as ``member.<MOUS>.<EB>.log.tgz``, the other logs as ``member.<MOUS>.<dir>.log.tgz`` (dir:
the SB-level directory they were in, e.g. Imaging), CASA mask images as ``.mask.tgz``
and primary-beam images as ``.pb.fits.gz``.
Pure: a destination of the older layout in, the delivered name (and tgz) out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

_EB = r"(?P<eb>uid___[^/]+?)"

BUNDLES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    # (older destination, the tgz it goes into, its path inside); {m} is member.<MOUS>
    (
        re.compile(rf"calibration/{_EB}\.calibration/(?P<rest>.+)"),
        "calibration/{eb}.calibration.tgz",
        "{eb}.calibration/{rest}",
    ),
    (
        re.compile(rf"calibration/{_EB}\.calibration\.plots/(?P<rest>.+)"),
        "calibration/{eb}.calibration.plots.tgz",
        "{eb}.calibration.plots/{rest}",
    ),
    (re.compile(rf"log/{_EB}__(?P<rest>.+)"), "log/{m}.{eb}.log.tgz", "{m}.{eb}.log/{rest}"),
    (re.compile(r"log/(?P<rest>[^/]+)"), "log/{m}.{top}.log.tgz", "{m}.{top}.log/{rest}"),
    (re.compile(r"product/(?P<rest>[^/]+\.mask)"), "product/{m}.{rest}.tgz", "{rest}"),
)

RENAMES = ((".flux.fits.gz", ".pb.fits.gz"),)
"""Endings delivered under their modern name: CASA's older ``.flux`` primary beam."""

TOP_LEVEL = "SB"
"""The ``<dir>`` of logs found directly in origpath."""


@dataclass(frozen=True)
class Bundle:
    """A tgz of the package (below the member directory) and a path inside it."""

    path: PurePosixPath
    inside: str


def readme_name(mous: str) -> str:
    return f"member.{mous}.README.txt"


def prefixed(dest: PurePosixPath, mous: str) -> PurePosixPath:
    """``dest`` with its file name under the subdirectory carrying ``member.<MOUS>.``."""
    sub, name, *rest = dest.parts
    member = f"member.{mous}"
    if not name.startswith(f"{member}."):
        name = f"member.{name}" if name.startswith((f"{mous}.", f"{mous}_")) else f"{member}.{name}"
    for old, new in RENAMES:
        if name.endswith(old):
            name = name.removesuffix(old) + new
    return PurePosixPath(sub, name, *rest)


def bundle_of(dest: PurePosixPath, top: str, mous: str) -> Bundle | None:
    """The tgz that ``dest`` travels in, if any; ``top``: the SB-level directory of its
    source (``TOP_LEVEL`` when it lay directly in origpath)."""
    for pattern, archive, inside in BUNDLES:
        found = pattern.fullmatch(dest.as_posix())
        if found:
            fill = {**found.groupdict(), "m": f"member.{mous}", "top": top}
            return Bundle(PurePosixPath(archive.format(**fill)), inside.format(**fill))
    return None
