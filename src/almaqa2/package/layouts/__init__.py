"""Recognising a reduction: which EBs it holds, where, and what its layout reveals.

The manual layouts share the script-generator core (``scriptgen``: EB directories next to
directories of combined products, or a single EB flat in origpath).  The Allegro and NRAO
layouts add what they know: checklists and scriptForPI beside origpath, the SB name, the
MOUS UID written in the directory name; single-dish scripts make it a total-power
reduction (``tp``).  A staged pipeline package (``staged``) and a
pipeline run's products (``pipeline``, for ``qa2 stage``) have no EB directories: their
EBs are read from file names and XML.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path, PurePosixPath

from almaqa2.errors import InputError
from almaqa2.package.layouts import allegro, nrao, pipeline, scriptgen, staged, tp
from almaqa2.package.layouts.scriptgen import EB
from almaqa2.package.scan import SourceEntry, scan
from almaqa2.uid import eb_of_name

MANUAL_PLACES = ("eb", "qa2", "eb-nested", "sb")
"""Places of a manual reduction (the others hold pipeline products: rules.py)."""


@dataclass(frozen=True)
class Reduction:
    """A recognised reduction directory (``root``) and what was learnt about it."""

    root: Path
    kind: Layout
    entries: tuple[SourceEntry, ...]
    ebs: tuple[EB, ...]
    extras: tuple[SourceEntry, ...] = ()  # files from beside origpath (Allegro)
    mous: str | None = None
    sb_name: str | None = None
    sg: str | None = None
    gous: str | None = None
    sd_scripts: tuple[SourceEntry, ...] = ()  # single-dish scripts: a total-power reduction

    @property
    def layout(self) -> str:
        return self.kind.name

    @property
    def tp(self) -> bool:
        return bool(self.sd_scripts)

    @cached_property
    def places(self) -> dict[PurePosixPath, tuple[str, EB | None]]:
        """{where each entry and extra was found (``rel``): where it sits (a place of
        ``rules``: ``eb``, ``qa2``, ``sb``...), its EB}: worked out once, for the plan and
        the facts."""
        return {e.rel: self.kind.place_of(self, e) for e in (*self.entries, *self.extras)}

    def place_of(self, entry: SourceEntry) -> tuple[str, EB | None]:
        return self.places[entry.rel]


class Layout:
    """A kind of reduction directory: how to recognise one (``detect``: the reduction, with
    its EBs and the UIDs its names reveal, or None) and where each of its entries sits for
    the rules (``place_of``).  The manual layouts share the script generator's places."""

    name = "script-generator"

    def detect(self, root: Path) -> Reduction | None:
        entries = scan(root)
        return Reduction(root, self, entries, scriptgen.find_ebs(root, entries))

    def place_of(self, reduction: Reduction, entry: SourceEntry) -> tuple[str, EB | None]:
        parts = entry.rel.parts
        if parts[0] == "..":  # beside origpath (Allegro checklists, scriptForPI)
            return "sb", None
        for eb in reduction.ebs:
            if eb.dir is None:
                continue
            if eb.dir == PurePosixPath():
                parts = entry.rel.parts
            elif entry.rel.is_relative_to(eb.dir):
                parts = entry.rel.relative_to(eb.dir).parts
            else:
                continue
            if len(parts) == 1:
                return "eb", eb
            if len(parts) == 2 and parts[0] == "qa2":
                return "qa2", eb
            if eb.dir != PurePosixPath():
                return "eb-nested", eb
        return "sb", None


class Allegro(Layout):
    """Allegro's ``<SB>/<SB>/``: checklists and scriptForPI beside origpath, the SB name."""

    name = "allegro"

    def detect(self, root: Path) -> Reduction | None:
        found = allegro.detect(root)
        if found is None:
            return None
        entries = scan(root)
        ebs = scriptgen.find_ebs(root, entries)
        return Reduction(root, self, entries, ebs, extras=found.extras, sb_name=found.sb_name)


class Nrao(Layout):
    """NRAO's origpath named by the member OUS UID."""

    name = "nrao"

    def detect(self, root: Path) -> Reduction | None:
        mous = nrao.mous_from_name(root)
        if mous is None:
            return None
        entries = scan(root)
        return Reduction(root, self, entries, scriptgen.find_ebs(root, entries), mous=mous)


class StagedPackage(Layout):
    """A staged pipeline package after the scriptForPI and imaging (Case 2)."""

    name = "staged"

    def detect(self, root: Path) -> Reduction | None:
        found = staged.detect(root)
        if found is None:
            return None
        entries = scan(found.member)
        return Reduction(
            found.member,
            self,
            entries,
            ebs_named(entries, found.member),
            mous=found.mous,
            sg=found.sg,
            gous=found.gous,
        )

    def place_of(self, reduction: Reduction, entry: SourceEntry) -> tuple[str, EB | None]:
        parts = entry.rel.parts
        if parts[0] in staged.DELIVERY_DIRS or parts == ("README",):
            return "kept", None
        if parts[0] == "calibrated" and len(parts) > 2 and parts[1] in staged.RESTORED:
            return "restore", None
        return "sb", None


class PipelineLayout(Layout):
    """A pipeline run (``SOUS_*/GOUS_*/MOUS_*``): its products, for ``qa2 stage``."""

    name = "pipeline"

    def detect(self, root: Path) -> Reduction | None:
        if not pipeline.looks_like_run(root):
            return None
        run = pipeline.find_run(root)
        entries = scan(run.products)
        ebs = ebs_named(entries, run.products, also=pipeline.xml_ebs(entries, run.mous))
        return Reduction(
            run.products, self, entries, ebs, mous=run.mous, sg=run.sous, gous=run.gous
        )

    def place_of(self, reduction: Reduction, entry: SourceEntry) -> tuple[str, EB | None]:
        return "pipeline", None


LAYOUTS: tuple[Layout, ...] = (PipelineLayout(), StagedPackage(), Allegro(), Nrao(), Layout())
"""Tried in this order; the script generator's (the last) takes any other directory."""


def ebs_named(
    entries: tuple[SourceEntry, ...], root: Path, also: tuple[str, ...] = ()
) -> tuple[EB, ...]:
    """The EBs that file names reveal (``<EB>.ms.calapply.txt``...) and ``also`` those
    known otherwise, for layouts without EB directories; InputError if there are none."""
    named = {uid for e in entries if (uid := eb_of_name(e.name)) is not None}
    uids = sorted(named.union(also))
    if not uids:
        raise InputError(
            "no execution block found (no uid___*.ms.calapply.txt, *.ms.flagversions.tgz"
            " or other file named by an EB)",
            root,
            fix="give the pipeline products of the member OUS",
        )
    return tuple(EB(uid, None) for uid in uids)


def recognise(root: Path) -> Reduction:
    """Scan ``root`` and recognise its layout; raises InputError when no EB is found."""
    for layout in LAYOUTS:
        reduction = layout.detect(root)
        if reduction is not None:
            return replace(reduction, sd_scripts=tp.sd_scripts(reduction.entries))
    raise AssertionError("the script generator's layout takes any directory")
