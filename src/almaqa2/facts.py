"""What the README says of the data itself: each EB from its MeasurementSet, each FITS
product from its header (SPEC §6).  Read-only; the reading is done by ``ms`` and ``fitsio``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from . import fitsio, ms
from .errors import InputError
from .plan import Plan
from .rules import MS_TRANSFORMS
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
        if placement.transform in MS_TRANSFORMS:
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
    found: dict[str, SourceEntry] = {}
    for entry in plan.reduction.entries:
        where, eb = plan.reduction.place_of(entry)
        if entry.kind is Kind.TABLE and where == "eb" and eb is not None:
            rank = _rank(entry.name)
            if rank is not None and (eb.uid not in found or rank < _rank(found[eb.uid].name)):
                found[eb.uid] = entry
    if not ms.available():
        why = f"python-casacore is not installed ({ms.EXTRA} to read the MSes)"
        log.info("no EB facts in the README: %s", why)
        return tuple(EbFacts(eb.uid, None, why) for eb in plan.reduction.ebs)
    facts = []
    for eb in plan.reduction.ebs:
        entry = found.get(eb.uid)
        if entry is None:
            facts.append(EbFacts(eb.uid, None, "no MeasurementSet of this EB in the reduction"))
            continue
        try:
            facts.append(EbFacts(eb.uid, ms.describe(entry.path)))
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

