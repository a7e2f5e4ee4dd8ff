"""``qa2 split``: the PI's science split of a calibrated MeasurementSet (seed 003) with
python-casacore, as CASA's ``split`` makes it, without CASA.

For each MS ``<vis>`` two MSes beside it, as the PI's steps make them:

- ``<vis>.split.cal``: the science spectral windows (those a target was observed in, of
  more than 4 channels: ``msmd.spwsforintent('OBSERVE_TARGET*')``), the calibrated column
  as DATA; its flags saved in ``<vis>.split.cal.flagversions`` as ``original_flags``;
- ``<vis>.split.cal.source``: the rows of that MS whose intent matches ``*TARGET*``; flags
  saved too.  It is made from the source MS with both selections at once (the same values
  as CASA's split of the ``.split.cal``), so that both cores work: the splits of all the
  MSes named are shared by this process and a second one (``split``).

Rows are selected with TaQL and copied by casacore (streamed, memory bounded); then the ids
are renumbered and the weights set as CASA does (``RENUMBERED``, ``REWEIGHED``, observed
with CASA 6.7.0.31's split on an ALMA-like MS: see ``make interop``).  Everything is built
in a staging directory beside the outputs and renamed into place when complete; the source
MS is read through a shadow (``ms.opened``), never opened writable.

``--json`` schema (with the envelope every command prints)::

    {"splits": [{"ms": str, "into": str, "makes": [
        {"name": str, "flagversions": str, "datacolumn": str,
         "spws": [{"id": int, "name": str, "channels": int}] | null,
         "states": [str] | null, "fields": [str] | null}]}],   # null: all, not renumbered
     "made": [{"path": str, "rows": int, "size": int}]}        # "dry_run": true instead
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from almaqa2 import destination, forked
from almaqa2.copying import copy_file
from almaqa2.data import ms as msio
from almaqa2.errors import DestinationError, InputError
from almaqa2.manifest import sizes_under
from almaqa2.package import package_dir
from almaqa2.progress import Progress

log = logging.getLogger(__name__)

SCIENCE_INTENT = "OBSERVE_TARGET*"
"""The spws a science split keeps: those observed with this intent (one of a state's)..."""
SCIENCE_MIN_CHANNELS = 5
"""... of at least this many channels (ALMA's WVR spw has 4, channel averages 1)."""
TARGET_INTENT = "*TARGET*"
"""The ``.source`` split's rows: states whose OBS_MODE (the whole text) matches this."""

DATA_COLUMNS = {"corrected": "CORRECTED_DATA", "data": "DATA"}
"""``--datacolumn``: the column delivered as DATA."""

NO_DATA_FIX = {
    "CORRECTED_DATA": "restore the calibration first (scriptForPI.py), or split --datacolumn data",
    "DATA": "replace it by a complete copy",
    "FLAG": "replace it by a complete copy",
}
"""The columns a split needs data in, in every row it takes (a column added and never
filled has none: its MS would be made without visibilities, or its flags not saved), and
what to do about one that has none."""

ROW = ""
"""In ``RENUMBERED``: the subtable's row number is the id."""
MAIN = ""
"""In ``RENUMBERED``: the main table."""

RENUMBERED: dict[str, tuple[tuple[str, str], ...]] = {
    "spw": (
        ("SPECTRAL_WINDOW", ROW),
        ("DATA_DESCRIPTION", "SPECTRAL_WINDOW_ID"),
        ("SOURCE", "SPECTRAL_WINDOW_ID"),
        ("FEED", "SPECTRAL_WINDOW_ID"),
        ("SYSCAL", "SPECTRAL_WINDOW_ID"),
        ("CALDEVICE", "SPECTRAL_WINDOW_ID"),
        ("SYSPOWER", "SPECTRAL_WINDOW_ID"),
    ),
    "data description": (("DATA_DESCRIPTION", ROW), (MAIN, "DATA_DESC_ID")),
    "state": (("STATE", ROW), (MAIN, "STATE_ID")),
    "field": (("FIELD", ROW), (MAIN, "FIELD_ID")),
    "source": (("SOURCE", "SOURCE_ID"), ("FIELD", "SOURCE_ID")),
}
"""For each kind of id a selection narrows, the (subtable, column) holding it: there rows
of an id not selected go, and the others are renumbered 0, 1, ... in the order of the
old ids; an id of -1 (any) stays.  A spw selection renumbers spws and data descriptions,
an intent selection states, a field selection fields and sources.  Not renumbered, as in
CASA: POLARIZATION (never), FREQ_OFFSET, and STATE or FIELD unless intents or fields
are selected."""

FLAG_VERSION = "original_flags"


@dataclass(frozen=True)
class Facts:
    """What the split needs to know of an MS, read once through a shadow."""

    columns: tuple[str, ...]
    spw_channels: tuple[int, ...]  # NUM_CHAN per spw
    spw_names: tuple[str, ...]
    dd_spw: tuple[int, ...]  # SPECTRAL_WINDOW_ID per data description
    state_modes: tuple[str, ...]  # OBS_MODE per state
    field_names: tuple[str, ...]
    field_sources: tuple[int, ...]  # SOURCE_ID per field
    observed: tuple[tuple[int, int], ...]  # the (data description, state) pairs of the rows
    missing: tuple[str, ...] = ()  # subtables the MS names that do not exist
    lacks: tuple[str, ...] = ()  # main-table columns every MS has, this one not
    empty: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    # {column of NO_DATA_FIX: the pairs of ``observed`` with rows where it holds no data}


@dataclass(frozen=True)
class Selection:
    """Which ids of each kind the split keeps (None: all, nothing renumbered)."""

    spws: tuple[int, ...] | None = None
    states: tuple[int, ...] | None = None
    fields: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Step:
    """One MS to make from the source MS: ``name``, with its ``column`` as DATA, the rows
    ``where`` selects, the ids ``kept`` renumbered, the weights ``reweighed``."""

    name: str
    column: str  # the source column delivered as DATA
    reweighed: tuple[str, ...]  # REWEIGHED's rules applied, in order
    selection: Selection
    kept: dict[str, tuple[int, ...]]  # RENUMBERED's kinds -> the ids kept

    @property
    def where(self) -> str:
        """The TaQL condition selecting the main table's rows of the ids kept ("" for all)."""
        return " AND ".join(
            f"{column} IN [{','.join(map(str, self.kept[kind]))}]"
            for kind, column in _main(self.kept)
        )

    def as_dict(self, facts: Facts) -> dict[str, Any]:
        spws = self.selection.spws
        return {
            "name": self.name,
            "flagversions": f"{self.name}.flagversions",
            "datacolumn": self.column,
            "spws": None if spws is None else [
                {"id": i, "name": facts.spw_names[i], "channels": facts.spw_channels[i]}
                for i in spws
            ],
            "states": None if self.selection.states is None else [
                facts.state_modes[i] for i in self.selection.states
            ],
            "fields": None if self.selection.fields is None else [
                facts.field_names[i] for i in self.selection.fields
            ],
        }  # fmt: skip


@dataclass(frozen=True)
class Request:
    """``qa2 split``'s options."""

    paths: tuple[Path, ...]
    spw: str = "science"
    intent: str = TARGET_INTENT
    fields: str | None = None
    datacolumn: str = "corrected"
    source: bool = True
    out: Path | None = None


@dataclass
class Planned:
    """The split of one MS: where its outputs go and the steps that make them."""

    ms: Path
    into: Path
    facts: Facts
    steps: list[Step] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ms": str(self.ms),
            "into": str(self.into),
            "makes": [s.as_dict(self.facts) for s in self.steps],
        }


@dataclass(frozen=True)
class Made:
    """An MS written: its path, rows and size in bytes (with its flag versions)."""

    path: Path
    rows: int
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "rows": self.rows, "size": self.size}


# -- which MSes ------------------------------------------------------------------------------


def measurement_sets(paths: Sequence[Path]) -> list[Path]:
    """The MSes named (an MS, or a directory holding MSes, like ``calibrated/``): each
    ``*.ms`` in it, links followed (the restore leaves ``uid.ms -> working/uid.ms``)."""
    found: list[Path] = []
    for path in paths:
        if (path / "table.dat").is_file():
            found.append(path)
        elif path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.name.endswith(".ms"))
            for ms in inside:  # (the restore's links: one to nothing is an MS missing)
                if not (ms / "table.dat").is_file():
                    raise InputError(
                        "named as a MeasurementSet, this is none (no table.dat"
                        f"{', a link to nothing' if not ms.exists() else ''})",
                        ms,
                        fix="restore it (scriptForPI.py), or name the MSes to split",
                    )
            if not inside:
                raise InputError(
                    "no MeasurementSet (*.ms) in this directory",
                    path,
                    fix="give a calibrated directory after the restore, or the MSes themselves",
                )
            found += inside
        elif path.exists():
            raise InputError(
                "not a MeasurementSet (no table.dat)", path, fix="give an MS or its directory"
            )
        else:
            raise InputError("not found", path, fix="give an MS or the directory holding it")
    return found


def beside(ms: Path) -> Path:
    """Where the outputs of ``ms`` go by default: its directory as named, but never
    ``working/`` (an MS named there directly puts them in the directory above, where the
    restore links it)."""
    parent = Path(os.path.abspath(ms)).parent
    return parent.parent if parent.name == "working" else parent


# -- what an MS holds ------------------------------------------------------------------------


def read_facts(ms: Path) -> Facts:
    """Read the ids the selection works on (through a shadow; nothing written)."""
    with msio.opened(ms, None) as table:
        try:
            facts = _facts(table, ms)
        except RuntimeError as exc:
            raise msio.unreadable(ms, exc) from exc
    for dd, spw in enumerate(facts.dd_spw):
        if not 0 <= spw < len(facts.spw_channels):
            raise InputError(
                f"the MS's data description {dd} names spectral window {spw}, which it does"
                f" not have (it has {len(facts.spw_channels)})",
                ms,
                fix="replace it by a complete copy",
            )
    return facts


def _facts(table: Any, ms: Path) -> Facts:
    named = {k: str(v)[7:] for k, v in table.getkeywords().items() if str(v).startswith("Table: ")}
    missing = tuple(k for k, v in sorted(named.items()) if not os.path.isdir(v))

    def columns(sub: str, *names: str) -> list[list[Any]]:
        """The columns ``names`` of the subtable ``sub``, opened once (empty where missing)."""
        if sub not in named or sub in missing:
            return [[] for _ in names]
        with msio.open_table(named[sub], ms) as t:
            there = set(t.colnames()) if t.nrows() else set()
            return [list(t.getcol(name)) if name in there else [] for name in names]

    main_columns = table.colnames()
    present = [c for c in NO_DATA_FIX if c in main_columns]
    empty = {c: msio.pairs(table, msio.UNDEFINED.format(c)) for c in present}
    observed = msio.pairs(table)
    spw_channels, spw_names = columns("SPECTRAL_WINDOW", "NUM_CHAN", "NAME")
    (dd_spw,) = columns("DATA_DESCRIPTION", "SPECTRAL_WINDOW_ID")
    (state_modes,) = columns("STATE", "OBS_MODE")
    field_names, field_sources = columns("FIELD", "NAME", "SOURCE_ID")
    return Facts(
        missing=missing,
        lacks=_lacks(main_columns),
        columns=tuple(main_columns),
        spw_channels=tuple(int(n) for n in spw_channels),
        spw_names=tuple(str(n) for n in spw_names),
        dd_spw=tuple(int(s) for s in dd_spw),
        state_modes=tuple(str(m) for m in state_modes),
        field_names=tuple(str(n) for n in field_names),
        field_sources=tuple(int(s) for s in field_sources),
        observed=observed,
        empty=empty,
    )


def _lacks(columns: list[str]) -> tuple[str, ...]:
    """The main-table columns every MS has (casacore's definition, less its ``_...``
    entries: keywords, not columns) that are not among ``columns``."""
    required = {c for c in msio.tables().required_ms_desc("MAIN") if not c.startswith("_")}
    return tuple(sorted(required - set(columns)))


# -- planning (pure) -------------------------------------------------------------------------


def science_spws(facts: Facts) -> tuple[int, ...]:
    """As ``msmd.spwsforintent('OBSERVE_TARGET*')``, keeping spws of more than 4 channels:
    the spws of the rows one of whose intents matches."""
    found = {
        facts.dd_spw[dd]
        for dd, state in facts.observed
        if 0 <= dd < len(facts.dd_spw)
        and 0 <= state < len(facts.state_modes)
        and any(
            fnmatch.fnmatchcase(mode.split("#")[0], SCIENCE_INTENT)
            for mode in facts.state_modes[state].split(",")
        )
    }
    return tuple(s for s in sorted(found) if facts.spw_channels[s] >= SCIENCE_MIN_CHANNELS)


def _ids(text: str, count: int, what: str, ms: Path) -> tuple[int, ...]:
    """``1,3`` or ``1~3`` (CASA's syntax for a list or a range of ids) as ids below ``count``."""
    ids: set[int] = set()
    for item in text.split(","):
        low, _, high = item.strip().partition("~")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise InputError(
                f"'{text}' is not a list of {what} ids", ms, fix="write them as 1,3 or 1~3"
            ) from None
        if not 0 <= first <= last < count:
            raise InputError(
                f"the MS has no {what} {item.strip()} (it has {count})",
                ms,
                fix=f"choose among 0~{count - 1}",
            )
        ids.update(range(first, last + 1))
    return tuple(sorted(ids))


def _field_ids(text: str, facts: Facts, ms: Path) -> tuple[int, ...]:
    """Fields by name or id, comma-separated (every field of a mosaic shares its name)."""
    ids: set[int] = set()
    for item in (i.strip() for i in text.split(",")):
        named = {i for i, name in enumerate(facts.field_names) if fnmatch.fnmatchcase(name, item)}
        if not named and item.isdigit() and int(item) < len(facts.field_names):
            named = {int(item)}
        if not named:
            raise InputError(
                f"the MS has no field {item}",
                ms,
                fix="give field names or ids (qa2 split --dry-run --json lists them)",
            )
        ids |= named
    return tuple(sorted(ids))


def kept(selection: Selection, facts: Facts) -> dict[str, tuple[int, ...]]:
    """The ids of each kind in ``RENUMBERED`` that a selection keeps."""
    found: dict[str, tuple[int, ...]] = {}
    if selection.spws is not None:
        found["spw"] = selection.spws
        found["data description"] = tuple(
            dd for dd, spw in enumerate(facts.dd_spw) if spw in selection.spws
        )
    if selection.states is not None:
        found["state"] = selection.states
    if selection.fields is not None:
        found["field"] = selection.fields
        found["source"] = tuple(sorted({facts.field_sources[f] for f in selection.fields}))
    return found


def _step(
    name: str, column: str, reweighed: tuple[str, ...], selection: Selection, facts: Facts,
    ms: Path,
) -> Step:  # fmt: skip
    ids = kept(selection, facts)
    if ids and not _selected(ids, facts.observed):
        raise _selects_nothing(name, ms)
    for needed in (column, "FLAG"):
        if empty := _selected(ids, facts.empty.get(needed, ())):
            (dd, state), more = empty[0], " and others" if len(empty) > 1 else ""
            raise InputError(
                f"the MS's {needed} column holds no data in rows that {name} takes (of data"
                f" description {dd} and state {state}{more})",
                ms,
                fix=NO_DATA_FIX[needed],
            )
    return Step(name, column, reweighed, selection, ids)


def _selects_nothing(name: str, ms: Path) -> InputError:
    return InputError(
        f"the selection for {name} selects no data",
        ms,
        fix="check --spw, --intent and --field against the MS (qa2 split --dry-run)",
    )


def _selected(
    ids: dict[str, tuple[int, ...]], pairs: tuple[tuple[int, int], ...]
) -> list[tuple[int, int]]:
    """The (data description, state) ``pairs`` whose rows the selection keeps (fields are
    checked when the rows are copied); an empty selection of any kind keeps none."""
    if not all(ids.values()):
        return []
    dds = ids.get("data description")
    states = ids.get("state")
    return [
        (dd, state)
        for dd, state in pairs
        if (dds is None or dd in dds) and (states is None or state in states)
    ]


def plan_one(ms: Path, facts: Facts, request: Request, into: Path) -> Planned:
    """The steps that split ``ms`` as ``request`` asks (pure: no file touched)."""
    column = DATA_COLUMNS[request.datacolumn]
    if column not in facts.columns:
        raise InputError(
            f"the MS has no {column} column to split",
            ms,
            fix="restore the calibration first (scriptForPI.py), or split --datacolumn data",
        )
    if facts.lacks:
        raise InputError(
            f"the MS has no {', '.join(facts.lacks)} column, which every MS has (CASA does"
            " not open an MS without it, nor would it open the split MSes)",
            ms,
            fix="replace it by a complete copy",
        )
    if request.spw == "science":
        spws = science_spws(facts)
        if not spws:
            raise InputError(
                "no science spectral window (none observed with intent OBSERVE_TARGET with"
                " more than 4 channels)",
                ms,
                fix="name the spws with --spw, e.g. --spw 1,3",
            )
    else:
        spws = _ids(request.spw, len(facts.spw_channels), "spw", ms)
    for name in facts.missing:
        log.warning("%s names a subtable %s that does not exist: the split MSes do not name it",
                    ms, name)  # fmt: skip
    planned = Planned(ms, into, facts)
    cal = f"{ms.name}.split.cal"
    reweighed = (REWEIGHED[column],)
    planned.steps.append(_step(cal, column, reweighed, Selection(spws=spws), facts, ms))
    if request.source:
        states = tuple(
            i for i, mode in enumerate(facts.state_modes)
            if fnmatch.fnmatchcase(mode, request.intent)
        )  # fmt: skip
        fields = None if request.fields is None else _field_ids(request.fields, facts, ms)
        selection = Selection(spws=spws, states=states, fields=fields)
        then = (*reweighed, REWEIGHED["DATA"])  # CASA splits the .split.cal's DATA
        planned.steps.append(_step(f"{cal}.source", column, then, selection, facts, ms))
    return planned


def plan(request: Request) -> list[Planned]:
    """Every MS's split, checked before anything is written."""
    if request.fields is not None and not request.source:
        raise InputError(
            "--field selects the targets of the .source split, and --no-source makes none",
            fix="drop one of the two",
        )
    into = None if request.out is None else destination.planned(request.out, "--out")
    planned = []
    for ms in measurement_sets(request.paths):
        one = plan_one(ms, read_facts(ms), request, into or beside(ms))
        if Path(os.path.realpath(one.into)).is_relative_to(os.path.realpath(ms)):
            raise DestinationError(
                "the split MSes cannot be written inside the MS they are split from",
                one.into,
                fix="choose an --out outside it",
            )
        for step in one.steps:
            target = one.into / step.name
            for path in (target, target.with_name(f"{step.name}.flagversions")):
                if path.exists() or path.is_symlink():
                    raise DestinationError(
                        "already exists (split never replaces an MS)",
                        path,
                        fix="remove it, or write elsewhere with --out",
                    )
        planned.append(one)
    names = [p.into / s.name for p in planned for s in p.steps]
    if len(set(names)) < len(names):
        raise InputError(
            "two MSes of the same name would be split into one place",
            fix="split them one at a time, or into different --out directories",
        )
    return planned


# -- the split (file-system effects) ---------------------------------------------------------


def split(
    request: Request, progress: Progress | None = None, planned: list[Planned] | None = None
) -> list[Made]:
    """Split every MS ``request`` names (``planned``: its ``plan``, if made already);
    returns the MSes made, in the order planned.  ``progress`` counts the MSes split.

    Each MS's outputs are built in a staging directory in its ``into`` (as a package's,
    under a lock, what a killed run left removed) and renamed in as soon as they are
    complete; a failure leaves the MSes completed before it.  Each MS's split is made in
    two parts (``_Part``), and the parts of all the MSes are shared by this process and a
    second one, the largest first (``forked.their_share``): of one MS, this process makes
    the first and the helper the rest, so both cores work; of several, neither waits
    while the other has a large first part to make."""
    planned = plan(request) if planned is None else planned
    made: list[list[Made]] = [[] for _ in planned]
    with contextlib.ExitStack() as stack:
        parts: list[_Part] = []  # the n-th MS's at 2n and 2n + 1
        weights: list[int] = []  # how long each takes, roughly: the MS's bytes for the
        # first split, half of them for the rest (the target rows), a sixteenth for flags
        for one in planned:
            first, *rest = one.steps
            stack.enter_context(destination.made(one.into))
            named = one.into / first.name  # (locked: what a killed split left is removed)
            stack.enter_context(package_dir.holding(named))
            staging = stack.enter_context(package_dir.staging(named, becomes=named.parent))
            parts += [_Part(one, staging, (first,), False), _Part(one, staging, tuple(rest), True)]
            size = _size(one.ms)
            weights += [size, size // 2 if rest else size // 16]
        rows: list[list[int] | None] = [None] * len(parts)

        def finished(i: int, made_rows: list[int]) -> None:
            """Part ``i`` is made; once both parts of its MS are, the MS is renamed in."""
            rows[i] = made_rows
            n = i // 2
            of_first, of_rest = rows[2 * n], rows[2 * n + 1]
            if of_first is not None and of_rest is not None:
                made[n] = _rename_in(planned[n], parts[i].staging, of_first + of_rest)
                if progress is not None:
                    progress(sum(1 for m in made if m), len(planned), planned[n].ms.name)

        forked.shared(
            range(len(parts)),
            forked.their_share(weights, 0),
            lambda i: finished(i, parts[i].make()),
            lambda i: (i, parts[i].make()),
            lambda answer: finished(*answer),
            "parts were made",
        )
    return [one for of_ms in made for one in of_ms]


@dataclass(frozen=True)
class _Part:
    """Half of the split of one MS, made in its ``staging`` by either process: the MSes of
    ``steps`` (the first; or the others, the ``.source`` MS, from the source MS too, with
    both selections at once: the same rows, values and ids as CASA's split of the
    ``.split.cal``, where SIGMA is set from WEIGHT already), then with ``flags`` every
    step's flag versions (the flags of its rows in the source MS: the split does not
    change them).  A part a helper that died left unfinished is made again here; the MS's
    bytes are read from the disk's cache."""

    one: Planned
    staging: Path
    steps: tuple[Step, ...]
    flags: bool

    def make(self) -> list[int]:
        """The rows of each MS made, afresh (what a helper that died left is removed),
        from one open of the source MS."""
        one = self.one
        names = [step.name for step in self.steps]
        names += [f"{step.name}.flagversions" for step in one.steps] if self.flags else []
        for name in names:
            shutil.rmtree(self.staging / name, ignore_errors=True)
        with msio.opened(one.ms, None) as table:
            for name in one.facts.missing:
                _stand_in(Path(table.name()) / name)
            rows = [_make(table, one, self.staging, step) for step in self.steps]
            if self.flags:
                _save_flags(table, self.staging, one.steps)
        return rows


def _rename_in(one: Planned, staging: Path, rows: list[int]) -> list[Made]:
    """Rename ``one``'s outputs, complete in ``staging``, into place."""
    for step in one.steps:
        for name in (step.name, f"{step.name}.flagversions"):
            os.rename(staging / name, one.into / name)
    return [
        Made(path, n, _size(path) + _size(Path(f"{path}.flagversions")))
        for path, n in zip((one.into / s.name for s in one.steps), rows, strict=True)
    ]


def _make(table: Any, one: Planned, staging: Path, step: Step) -> int:
    """Make ``step``'s MS in ``staging`` from ``one``'s MS, open as ``table``; returns its
    rows.

    Subtables come as copies of the source's, which the renumbering then changes.  A
    subtable the MS names but does not have (``one.facts.missing``: pyuvdata's real MS
    names an ASDM_CALATMOSPHERE it left out, which stops CASA's split) is copied from an
    empty stand-in in the shadow (``_Part.make``), then removed and left unnamed.  The copy
    is then opened once for all the rest."""
    target = staging / step.name
    columns = [c for c in table.colnames() if c not in msio.DROPPED] + [step.column]
    query = _query(columns, step)
    if not msio.copy_rows(table, one.ms, query, target, copy_file, "output directory"):
        raise _selects_nothing(step.name, one.ms)
    with msio.open_table(str(target), one.ms, readonly=False) as made:
        for name in one.facts.missing:
            made.removekeyword(name)
            shutil.rmtree(target / name)
        _finish(made, one.ms, step)
        return int(made.nrows())


def _save_flags(table: Any, staging: Path, steps: list[Step]) -> None:
    """Save the flags of each step's rows of the MS open as ``table`` as its MS's flag
    versions in ``staging``."""
    for step in steps:
        query = _query(["FLAG", "FLAG_ROW", "DATA_DESC_ID"], step)
        with contextlib.closing(msio.tables().taql(query, tables=[table])) as rows:
            save_flags(rows, staging / f"{step.name}.flagversions")


def _query(columns: list[str], step: Step) -> str:
    """TaQL selecting ``columns`` of ``step``'s rows of the table given as ``$1``."""
    where = f" WHERE {step.where}" if step.where else ""
    return f"SELECT {', '.join(columns)} FROM $1{where}"


def _stand_in(path: Path) -> None:
    """An empty table at ``path``."""
    tables = msio.tables()
    desc = tables.maketabdesc([tables.makescacoldesc("STAND_IN", 0)])
    msio.close(tables.table(str(path), desc, nrow=0, ack=False))


def _finish(table: Any, ms: Path, step: Step) -> None:
    """Name the column DATA, renumber the ids, set the weights as CASA does."""
    if step.column != "DATA":
        table.renamecol(step.column, "DATA")
    main = {col: _lookup(step.kept[k]) for k, col in _main(step.kept)}
    for start in range(0, table.nrows(), msio.CHUNK_ROWS):
        n = min(msio.CHUNK_ROWS, table.nrows() - start)
        for column, lookup in main.items():
            table.putcol(column, _renumbered(table.getcol(column, start, n), lookup), start, n)
    pairs = _weight_pairs(table)
    for how in step.reweighed:
        for start, n in msio.runs(table):
            _reweigh(table, pairs, start, n, how)
    keywords = table.getkeywords()
    for sub, places in _sub_places(step.kept).items():
        if sub in keywords:
            with msio.open_table(table.getkeyword(sub), ms, readonly=False) as subtable:
                _renumber_subtable(subtable, places)


def _main(ids: dict[str, tuple[int, ...]]) -> list[tuple[str, str]]:
    """(kind, main-table column) of each kind of id kept."""
    return [(kind, col) for kind in ids for table, col in RENUMBERED[kind] if table == MAIN]


def _sub_places(ids: dict[str, tuple[int, ...]]) -> dict[str, list[tuple[str, np.ndarray]]]:
    """For each subtable, its (column or ROW, old -> new id lookup) pairs to apply."""
    places: dict[str, list[tuple[str, np.ndarray]]] = {}
    for kind, kept_ids in ids.items():
        for table, column in RENUMBERED[kind]:
            if table != MAIN:
                places.setdefault(table, []).append((column, _lookup(kept_ids)))
    return places


def _lookup(kept_ids: tuple[int, ...]) -> np.ndarray:
    """old id -> new id (-1 where the id goes)."""
    lookup = np.full(max(kept_ids, default=-1) + 1, -1, np.int64)
    lookup[list(kept_ids)] = np.arange(len(kept_ids))
    return lookup


def _renumbered(values: np.ndarray, lookup: np.ndarray) -> np.ndarray:
    """``values`` through ``lookup``; -1 (any) stays, an id not kept becomes -2 (its row
    goes)."""
    out = values.copy()
    ids = values >= 0
    new = np.full(values.shape, -1, np.int64)
    known = ids & (values < len(lookup))
    new[known] = lookup[values[known]]
    out[ids] = np.where(new[ids] >= 0, new[ids], -2)
    return out


def _renumber_subtable(subtable: Any, places: list[tuple[str, np.ndarray]]) -> None:
    """Remove the rows of ids not kept and renumber the rest, in each of ``places``."""
    n = subtable.nrows()
    keep = np.ones(n, bool)
    columns: dict[str, np.ndarray] = {}
    for column, lookup in places:
        if column == ROW:
            keep &= _renumbered(np.arange(n), lookup) >= 0
        elif column in subtable.colnames() and n:
            new = _renumbered(subtable.getcol(column), lookup)
            keep &= new != -2
            columns[column] = new
    for column, values in columns.items():
        subtable.putcol(column, values)
    gone = np.flatnonzero(~keep)
    if len(gone):
        subtable.removerows(gone.tolist())


SIGMA_FROM_WEIGHT = "SIGMA = 1/sqrt(WEIGHT)"
WEIGHT_FROM_SIGMA = "WEIGHT = 1/SIGMA^2"
REWEIGHED = {"CORRECTED_DATA": SIGMA_FROM_WEIGHT, "DATA": WEIGHT_FROM_SIGMA}
"""What CASA's split does to the weights as it moves a column to DATA (observed with CASA
6.7.0.31): the corrected column's SIGMA follows WEIGHT (-1 where WEIGHT is 0); the data
column's WEIGHT follows SIGMA (0 where SIGMA is not positive); both computed in single
precision, as CASA's values are.  The same for SIGMA_SPECTRUM and WEIGHT_SPECTRUM where an
MS has both."""

_FLT_MIN = np.finfo(np.float32).tiny


def _weight_pairs(table: Any) -> list[tuple[str, str]]:
    """The (weight, sigma) columns the table has both of."""
    columns = set(table.colnames())
    pairs = [("WEIGHT", "SIGMA"), ("WEIGHT_SPECTRUM", "SIGMA_SPECTRUM")]
    return [(w, s) for w, s in pairs if w in columns and s in columns]


def _reweigh(table: Any, pairs: list[tuple[str, str]], start: int, n: int, how: str) -> None:
    """Apply one of REWEIGHED to rows ``start`` to ``start + n`` (of one shape)."""
    for weight_col, sigma_col in pairs:
        if not (table.iscelldefined(weight_col, start) and table.iscelldefined(sigma_col, start)):
            continue
        with np.errstate(divide="ignore"):
            if how == SIGMA_FROM_WEIGHT:
                weight = table.getcol(weight_col, start, n).astype(np.float32)
                sigma = np.where(weight > 0, np.float32(1) / np.sqrt(weight), -1)
                table.putcol(sigma_col, sigma.astype(np.float32), start, n)
            else:
                sigma = table.getcol(sigma_col, start, n).astype(np.float32)
                weight = np.where(sigma > _FLT_MIN, np.float32(1) / (sigma * sigma), 0)
                table.putcol(weight_col, weight.astype(np.float32), start, n)


def save_flags(table: Any, into: Path, version: str = FLAG_VERSION, comment: str = "") -> None:
    """Save the FLAG and FLAG_ROW of the MS open as ``table`` (its rows, or a selection of
    them with DATA_DESC_ID) as ``flagmanager(mode='save')`` does: a directory with
    FLAG_VERSION_LIST (``name : comment`` lines) and a table ``flags.<name>`` holding the
    two columns, written in runs of one shape."""
    tables = msio.tables()
    into.mkdir()
    (into / "FLAG_VERSION_LIST").write_text(f"{version} : {comment}\n")
    desc = tables.maketabdesc([
        tables.makearrcoldesc("FLAG", False, ndim=2, valuetype="boolean"),
        tables.makescacoldesc("FLAG_ROW", False),
    ])  # fmt: skip
    dminfo = {"*1": {"TYPE": "TiledShapeStMan", "NAME": "TiledFlag", "COLUMNS": ["FLAG"]}}
    path = str(into / f"flags.{version}")
    with msio.closing(
        tables.table(path, desc, nrow=table.nrows(), dminfo=dminfo, ack=False)
    ) as flags:
        for start, n in msio.runs(table):
            flags.putcol("FLAG", table.getcol("FLAG", start, n), start, n)
            flags.putcol("FLAG_ROW", table.getcol("FLAG_ROW", start, n), start, n)


def _size(path: Path) -> int:
    return sum(sizes_under(path).values())
