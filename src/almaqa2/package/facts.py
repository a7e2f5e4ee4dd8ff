"""What the README says of the data itself: each EB from its MeasurementSet, each FITS
product from its header (SPEC §6).  Read-only; the reading is done by ``ms`` and ``fitsio``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from almaqa2 import forked, plainfile
from almaqa2.data import fitsio, ms
from almaqa2.errors import InputError
from almaqa2.package.plan import Plan
from almaqa2.package.scan import Kind, SourceEntry
from almaqa2.uid import uid_prefix

if TYPE_CHECKING:
    from almaqa2.helpers.fluxscale import Fluxes

log = logging.getLogger(__name__)
T = TypeVar("T")

SPARE = (ms.TABLES, __name__)
"""What the helper that reads the EB facts in fake mode imports (``forked.Spare``)."""


@dataclass(frozen=True)
class EbFacts:
    uid: str
    info: ms.MsInfo | None
    why_not: str = ""  # when ``info`` is None: why it could not be read


@dataclass(frozen=True)
class Facts:
    read_ebs: Callable[[], tuple[EbFacts, ...]]  # see ``ebs``
    read_products: Callable[[], tuple[tuple[str, fitsio.FitsInfo], ...]]  # see ``products``
    read_fluxes: Callable[[], Fluxes | None]  # see ``fluxes``
    opened: dict[Path, ms.Opened]  # each MS to reduce, as its one open found it
    casa_versions: tuple[str, ...] = ()  # named at the top of the packaged logs, in order
    notes: tuple[tuple[str, str], ...] = ()  # the reducer's notes for the PI: (name, text)

    @functools.cached_property
    def ebs(self) -> tuple[EbFacts, ...]:
        """Each EB's facts.  In fake mode they serve the README only, and a helper process
        reads them (importing casacore, opening the MSes) while the package is written:
        they are waited for here, when the README is."""
        return self.read_ebs()

    @functools.cached_property
    def products(self) -> tuple[tuple[str, fitsio.FitsInfo], ...]:
        """(dest in the package, header facts) of each FITS product, read by a helper
        (astropy takes longer to import than a fake package of 10,000 files to make):
        in fake mode waited for here, when the README is; in the others before anything
        is written, while the MSes are read."""
        return self.read_products()

    @functools.cached_property
    def fluxes(self) -> Fluxes | None:
        """The packaged fluxscale results, for the review page: read when it is rendered
        (fake mode has none)."""
        return self.read_fluxes()


CASA_VERSION = re.compile(
    r"CASA Version\s+(?:(?:CASA|MODULAR|CASALITH|PIPELINE)\s+)?(\d+(?:\.\d+)+(?:-\d+)?)", re.I
)
"""``CASA Version 4.2.2 (r30986)`` (CASA 4, 5), ``CASA Version MODULAR 6.7.0.31`` (pip),
``CASALITH 6.5.4.9`` (the tarball), ``PIPELINE 6.6.1.17`` (pipeline builds)."""
_LOG_HEAD = 256 * 1024


def collect(plan: Plan, reduce: bool, spare: forked.Spare | None = None) -> Facts:
    """Read the facts, each MS opened once.  With ``reduce`` (every mode but fake: a ticket
    is sized by reducing), every MS to reduce must open and have the column to deliver
    (else InputError, before anything is written), and what its open found serves the
    reduction; an EB's MS that only describes it, and every MS in fake mode (which never
    needs casacore), is a warning when unreadable.  A product that is not FITS is an error.
    ``spare``: the helper to read the EBs' MSes in fake mode (one forked as the command
    began, casacore imported already: ``packager.package``)."""
    fits = [
        (p.dest.as_posix(), p.source.path)
        for p in plan.placements
        if p.dest.parts[0] == "product" and ".fits" in p.source.name
    ]
    products = forked.Later(_summaries, fits).result if fits else _known(())
    describing = _describing(plan)
    opened: dict[Path, ms.Opened] = {}
    described = {entry.path for entry in describing.values()}
    if reduce:
        for placement in plan.placements:
            if placement.transform in ms.MS_TRANSFORMS:
                source = placement.source
                if source.path not in opened:
                    opened[source.path] = ms.read(
                        source.path, source.path in described, source.members
                    )
                ms.check(source.path, placement.transform, opened[source.path])
    notes = tuple((e.name, _notes(e.path)) for e in plan.notes)
    uids = [eb.uid for eb in plan.reduction.ebs]
    if reduce or not describing:  # the MSes are open already, or there is none to read
        read_ebs = _known(_ebs(uids, describing, opened))
    else:  # (read when asked, where this process may not fork: ``Later``)
        read_ebs = forked.Later(_ebs, uids, describing, {}, spare=spare).result
    if reduce:
        products = _known(products())
    fluxes = functools.partial(_fluxes, plan)
    return Facts(read_ebs, products, fluxes, opened, _casa_versions(plan), notes)


def _notes(path: Path) -> str:
    return plainfile.text(
        path, "reducer's notes file", fix="rename it (a .txt named *notes* goes into the README)"
    )


def _summaries(fits: list[tuple[str, Path]]) -> tuple[tuple[str, fitsio.FitsInfo], ...]:
    return tuple((dest, fitsio.summary(path)) for dest, path in fits)


def _fluxes(plan: Plan) -> Fluxes | None:
    """The fluxscale results among the packaged files (None: there are none)."""
    from almaqa2.helpers import fluxscale  # (imported with the review's other modules)

    return fluxscale.collect(
        (
            p.source.path.read_text(errors="replace"),
            p.eb.uid if p.eb else fluxscale.eb_of(p.source.path),
        )
        for p in plan.placements
        if p.source.kind is Kind.FILE and p.source.name.endswith("fluxscale")
    )


def _casa_versions(plan: Plan) -> tuple[str, ...]:
    """CASA versions named at the top of the packaged logs, in order of first appearance."""
    found: dict[str, None] = {}
    for placement in plan.placements:
        if placement.dest.parts[0] == "log":
            with open(placement.source.path, "rb") as f:
                head = f.read(_LOG_HEAD).decode("utf-8", "replace")
            for version in CASA_VERSION.findall(head):
                found.setdefault(version, None)
    return tuple(found)


def _describing(plan: Plan) -> dict[str, SourceEntry]:
    """{EB UID: the MS that describes it in the README} (the best of its MSes)."""
    best: dict[str, tuple[int, SourceEntry]] = {}
    uids = {eb.uid for eb in plan.reduction.ebs}
    for entry in plan.reduction.entries:
        rank = _rank(entry.name) if entry.kind is Kind.TABLE else None
        if rank is None:
            continue
        where, eb = plan.reduction.place_of(entry)
        if eb is not None and where != "eb":
            continue  # an EB directory's MS describes its EB, not one nested deeper
        uid = eb.uid if eb is not None else uid_prefix(entry.name)  # layouts without EB dirs
        if uid in uids and rank < best.get(uid, (rank + 1,))[0]:
            best[uid] = (rank, entry)
    return {uid: entry for uid, (_, entry) in best.items()}


def _ebs(
    uids: list[str], describing: dict[str, SourceEntry], opened: dict[Path, ms.Opened]
) -> tuple[EbFacts, ...]:
    """The facts of the EBs ``uids``, each from the MS that describes it."""
    if describing and not ms.available():  # (casacore is imported only when needed)
        why = f"python-casacore is not installed ({ms.EXTRA} to read the MSes)"
        log.info("no EB facts in the README: %s", why)
        return tuple(EbFacts(uid, None, why) for uid in uids)
    facts = []
    for uid in uids:
        entry = describing.get(uid)
        if entry is None:
            facts.append(EbFacts(uid, None, "no MeasurementSet of this EB in the reduction"))
            continue
        if entry.path in opened:
            facts.append(EbFacts(uid, opened[entry.path].info))
            continue
        try:
            facts.append(EbFacts(uid, ms.describe(entry.path, entry.members)))
        except InputError as exc:
            log.warning("%s", exc)
            facts.append(EbFacts(uid, None, exc.what))
    return tuple(facts)


def _known(value: T) -> Callable[[], T]:
    return lambda: value


def _rank(name: str) -> int | None:
    """The preference of an MS name for describing its EB (lower is better)."""
    for rank, suffix in enumerate(ms.METADATA_FROM):
        if name.endswith(suffix):
            return rank
    return None
