"""What the README says of the data itself: each EB from its MeasurementSet, each FITS
product from its header (SPEC §6).  Read-only; the reading is done by ``ms`` and ``fitsio``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from . import fitsio, ms
from .errors import InputError
from .plan import Plan
from .scan import Kind, SourceEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EbFacts:
    uid: str
    info: ms.MsInfo | None
    why_not: str = ""  # when ``info`` is None: why it could not be read


@dataclass(frozen=True)
class Facts:
    ebs: tuple[EbFacts, ...]
    products: tuple[tuple[str, fitsio.FitsInfo], ...]  # (dest in the package, header facts)


def check_ms(plan: Plan) -> None:
    """Before writing: every MS to reduce opens and has the column to deliver."""
    for placement in plan.placements:
        if placement.transform in ms.MS_TRANSFORMS:
            ms.check(placement.source.path, placement.transform)


def collect(plan: Plan) -> Facts:
    """Read the facts; a product that is not FITS is an error, an unreadable MS a warning
    (fake and ticket modes never need casacore; copy and hard checked the MSes already)."""
    products = tuple(
        (p.dest.as_posix(), fitsio.summary(p.source.path))
        for p in plan.placements
        if p.dest.parts[0] == "product" and ".fits" in p.source.name
    )
    return Facts(_ebs(plan), products)


def _ebs(plan: Plan) -> tuple[EbFacts, ...]:
    if not ms.available():
        why = f"python-casacore is not installed ({ms.EXTRA} to read the MSes)"
        log.info("no EB facts in the README: %s", why)
        return tuple(EbFacts(eb.uid, None, why) for eb in plan.reduction.ebs)
    best: dict[str, tuple[int, SourceEntry]] = {}  # {EB UID: (rank, its MS to read)}
    for entry in plan.reduction.entries:
        rank = _rank(entry.name) if entry.kind is Kind.TABLE else None
        if rank is None:
            continue
        where, eb = plan.reduction.place_of(entry)
        if where == "eb" and eb is not None and rank < best.get(eb.uid, (rank + 1,))[0]:
            best[eb.uid] = (rank, entry)
    facts = []
    for eb in plan.reduction.ebs:
        if eb.uid not in best:
            facts.append(EbFacts(eb.uid, None, "no MeasurementSet of this EB in the reduction"))
            continue
        try:
            facts.append(EbFacts(eb.uid, ms.describe(best[eb.uid][1].path)))
        except InputError as exc:
            log.warning("%s", exc)
            facts.append(EbFacts(eb.uid, None, exc.what))
    return tuple(facts)


def _rank(name: str) -> int | None:
    """The preference of an MS name for describing its EB (lower is better)."""
    for rank, suffix in enumerate(ms.METADATA_FROM):
        if name.endswith(suffix):
            return rank
    return None
