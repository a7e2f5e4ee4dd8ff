"""MeasurementSets through python-casacore: column reduction (SPEC §4.2) and metadata.

python-casacore is an optional extra (``almaqa2[ms]``): only cycle-0 copy and hard
packaging, which must write reduced MSes, cannot do without it.

casacore writes to ``table.lock`` in every table it opens (creating it when missing),
which would change the reducer's directory; yet the lock file also holds the table's
current row count.  So casacore never opens a source MS in place: the reduction works on a
copy in the staging directory, and checks and metadata read it through a *shadow*, a
temporary tree of symbolic links to its files with copies of its lock files.  A shadow is
removed when it has been read, and one left by a run that was killed (SIGKILL) is removed
by the next run: each is locked (``flock``) by the process reading through it.  Shadows
are made in memory where there is some (``_shadow_home``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib
import itertools
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from almaqa2.errors import OUTPUT_REFUSED, DestinationError, InputError, no_room, reason
from almaqa2.package import scan
from almaqa2.package.rules import Transform
from almaqa2.uid import to_fs, uid_prefix

if TYPE_CHECKING:  # numpy comes with python-casacore, when the MS code runs
    import numpy as np

EXTRA = "pip install 'almaqa2[ms]'"

KEEP: dict[Transform, tuple[str, ...]] = {
    Transform.RAW_MS: ("DATA",),
    Transform.CALIBRATED_MS: ("CORRECTED_DATA", "DATA"),
}
"""The column delivered as DATA: the first of these the MS has."""

DROPPED = frozenset({"DATA", "CORRECTED_DATA", "MODEL_DATA", "IMAGING_WEIGHT"})
"""Visibility and imaging scratch columns: none goes to the package but the one kept."""

METADATA_FROM = (".ms.split.cal", ".ms.split", ".ms")
"""Which of an EB's MSes describes it in the README, the first found."""

MS_TRANSFORMS = frozenset(KEEP)

Place = Callable[[str, str], None]
"""Makes a package file (second argument) as a copy of a source file (first)."""


@dataclass(frozen=True)
class Written:
    """A file of a reduced MS: its size, and the source file it must equal (None where
    casacore wrote it)."""

    path: str
    size: int
    source: str | None


def available() -> bool:
    """True if python-casacore can be imported."""
    try:
        tables()
    except InputError:
        return False
    return True


TABLES = "casacore.tables"
"""The module that reads tables (imported only when needed: with numpy, 0.15 s)."""


def tables() -> Any:
    """The casacore.tables module, or an error naming the extra that provides it."""
    try:
        return importlib.import_module(TABLES)
    except ImportError:
        raise InputError(
            "python-casacore is not installed, and it is needed to reduce the MeasurementSets"
            " of a cycle-0 package in copy, hard or ticket mode (a ticket is sized by reducing)",
            fix=f"install it with {EXTRA} (fake mode works without it)",
        ) from None


_SHADOW = "almaqa2-ms-"
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
"""How a shadow's directory is opened to lock it: never through a link planted there."""


TEMP_VARIABLES = ("TMPDIR", "TEMP", "TMP")
_MEMORY = "/dev/shm"


@functools.cache  # once a run
def _shadow_home() -> str:
    """Where shadows are made: the temporary directory the user named ($TMPDIR), else
    /dev/shm, a file system in memory (Linux), else the system's temporary directory.
    A shadow is an entry per file and directory of its MS (~80 for a small one); on a disk
    each is an inode written through the file system's journal: 0.5-0.8 ms each on the
    ext4 /tmp of the machine ``benchmarks/`` ran on, 5 us in memory (a hard package of 3
    EBs, which reads 6 MSes: 2.37 -> 2.07 s)."""
    named = any(os.environ.get(name) for name in TEMP_VARIABLES)
    if not named and os.path.isdir(_MEMORY) and os.access(_MEMORY, os.W_OK | os.X_OK):
        room = os.statvfs(_MEMORY)  # (a container's is 64 MB, shared: full, every run failed)
        if room.f_bavail * room.f_frsize >= _MEMORY_ROOM[0] and room.f_favail >= _MEMORY_ROOM[1]:
            return _MEMORY
    return tempfile.gettempdir()


_MEMORY_ROOM = (1 << 20, 10_000)
"""The bytes and inodes /dev/shm must have free to hold shadows (an inode per file and
directory of an MS, a copy of each lock file), else the system's temporary directory is."""


@functools.cache  # once a run
def _remove_abandoned_shadows() -> None:
    """Remove the shadows no process holds (their reader was killed), ours only."""
    temp = _shadow_home()
    try:
        names = [name for name in os.listdir(temp) if name.startswith(_SHADOW)]
    except OSError:
        return  # a temporary directory we may not list: nothing of ours to find
    for name in names:
        try:
            fd = os.open(os.path.join(temp, name), _DIRECTORY_FLAGS)
        except OSError:
            continue  # gone meanwhile, or not a directory
        try:
            if os.fstat(fd).st_uid == os.geteuid():
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(os.path.join(temp, name), ignore_errors=True)
        except BlockingIOError:
            pass  # being read through
        finally:
            os.close(fd)


def _held_directory() -> tuple[str, int]:
    """A new private temporary directory for a shadow, and a descriptor of it that holds
    its lock (released when it is closed, or when this process dies)."""
    _remove_abandoned_shadows()
    while True:
        top = tempfile.mkdtemp(prefix=_SHADOW, dir=_shadow_home())
        try:
            fd = os.open(top, _DIRECTORY_FLAGS)
        except FileNotFoundError:
            continue  # another run found it free, and removed it
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits while another run removes it
        try:
            if os.stat(top).st_ino == os.fstat(fd).st_ino:
                return top, fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextlib.contextmanager
def _shadow(ms: Path, inside: Sequence[Inside] | None) -> Iterator[str]:
    """A tree of links to ``ms``'s files (lock files copied), removed afterwards.
    ``inside``: its files and directories as the scan listed them (None: an MS read
    outside a reduction, listed here the same way)."""
    if not (ms / "table.dat").is_file():
        raise InputError(
            "not a MeasurementSet (no table.dat)", ms, fix="replace it by a complete copy"
        )
    try:
        top, held = _held_directory()
    except OSError as exc:
        raise _no_shadow(exc) from exc
    try:
        root = os.path.join(top, ms.name)
        try:
            os.mkdir(root)
            listed = scan.members(os.path.abspath(ms))[0] if inside is None else inside
            for member in listed:  # sorted: a directory comes before what it holds
                link = os.path.join(root, member.rel)
                if member.size is None:
                    os.mkdir(link)
                    continue
                source = member.target or os.path.join(os.path.abspath(ms), member.rel)
                if os.path.basename(member.rel) == "table.lock":
                    shutil.copyfile(source, link)
                else:
                    os.symlink(source, link)
        except OSError as exc:
            if exc.errno in OUTPUT_REFUSED:  # (said before the shadow is removed)
                raise _no_shadow(exc) from exc
            raise
        yield root
    finally:
        shutil.rmtree(top, ignore_errors=True)
        os.close(held)


def _no_shadow(exc: OSError) -> DestinationError:
    """A shadow that the temporary directory refused (full, out of inodes: it named the
    shadow's hidden path, and said to choose another place, which is no option given)."""
    home = _shadow_home()
    instead = "another temporary directory (TMPDIR=...)"
    fix = f"check your rights to it, or choose {instead}"
    if exc.errno in OUTPUT_REFUSED:
        fix = no_room(exc.errno, home, instead)
    return DestinationError(
        f"could not make the temporary view MeasurementSets are read through ({exc.strerror})",
        home,
        fix=f"{fix}, then run again",
    )


_UNCLOSED: list[Any] = []
"""Tables whose writes failed (a full disk).  Closing or destroying such a table writes
again and, failing again, throws out of a C++ destructor, which aborts the process (its
clean-up undone, its error unsaid): they are kept here, never closed nor destroyed (``qa2``
ends without taking its modules apart: ``cli.main.entrypoint``)."""


def close(table: Any) -> None:
    """Close ``table``, written to disk first if it was open for writing (a flush that
    fails raises as any other failure); one whose writes fail is kept (``_UNCLOSED``)."""
    if table.iswritable():
        try:
            table.flush()
        except RuntimeError:
            _UNCLOSED.append(table)
            raise
    table.close()


@contextlib.contextmanager
def closing(table: Any) -> Iterator[Any]:
    """``table``, closed (``close``) on the way out: for every table written."""
    try:
        yield table
    finally:
        close(table)


@contextlib.contextmanager
def open_table(path: str, ms: Path, readonly: bool = True) -> Iterator[Any]:
    """The table at ``path`` (``ms``, a shadow of it, a subtable or a copy) opened, with
    the larger cache of ``cache_buckets``, and closed again; casacore failures name
    ``ms``."""
    try:
        table = tables().table(path, readonly=readonly, ack=False)
        cache_buckets(table)
    except RuntimeError as exc:
        raise unreadable(ms, exc) from exc
    with closing(table):
        yield table


@contextlib.contextmanager
def opened(ms: Path, inside: Sequence[Inside] | None) -> Iterator[Any]:
    """``ms`` opened read-only through a shadow."""
    with _shadow(ms, inside) as shadow, open_table(shadow, ms) as table:
        yield table


def unreadable(ms: Path, exc: Exception) -> InputError:
    """casacore's complaint, with the shadow tree it read through named as the MS itself."""
    said = re.sub(rf"\S*{_SHADOW}[^/\s]*/{re.escape(ms.name)}", str(ms), reason(exc))
    return InputError(
        f"casacore cannot read this MeasurementSet ({said})",
        ms,
        fix="replace it by a complete copy, or remove it from the reduction",
    )


def _kept(columns: list[str], transform: Transform, ms: Path) -> str:
    for name in KEEP[transform]:
        if name in columns:
            return name
    raise InputError(
        f"the MeasurementSet has no {' or '.join(KEEP[transform])} column to deliver",
        ms,
        fix="check that it is the right MS (raw: DATA; calibrated: CORRECTED_DATA or DATA)",
    )


class Short(NamedTuple):
    """A data cube cut short: the files of a tiled storage manager (``table.f<N>_TSM*``)
    hold fewer bytes than its tiles take."""

    columns: tuple[str, ...]  # the columns it stores
    files: str
    has: int
    needs: int


@dataclass(frozen=True)
class Opened:
    """What one open of an MS tells: its columns and storage managers (for the reduction)
    and, when asked, what the README says of its EB."""

    columns: tuple[str, ...]
    dminfo: dict[str, Any]
    info: MsInfo | None
    empty: tuple[str, ...] = ()  # visibility columns holding no data in some rows
    short: tuple[Short, ...] = ()  # data cubes cut short (``cut_short``)


def read(ms: Path, describe: bool, inside: Sequence[Inside]) -> Opened:
    """Open ``ms``, an MS to reduce, once (through a shadow of ``inside``, its files as
    the scan listed them) and read what the package needs of it, with the data cubes
    cut short (``cut_short``: the reduction copies the cubes it delivers unread)."""
    with opened(ms, inside) as table:
        try:
            info = _describe(table, ms) if describe else None
            columns = tuple(table.colnames())
            dminfo = table.getdminfo()
            empty = _empty(table, columns)
        except RuntimeError as exc:
            raise unreadable(ms, exc) from exc
    sizes = {f.rel: f.size or 0 for f in inside if "/" not in f.rel}
    return Opened(columns, dminfo, info, empty, cut_short(dminfo, sizes))


def cut_short(dminfo: dict[str, Any], sizes: dict[str, int]) -> tuple[Short, ...]:
    """Each tiled storage manager whose files (of the MS's files and their ``sizes``)
    hold fewer bytes than its hypercubes' tiles take.  A tile takes a bucket of
    ``BucketSize`` bytes, and a hypercube as many tiles as its tile shape fits in its
    cube shape (so casacore writes them: checked against CASA's own MSes)."""
    short = []
    for manager in dminfo.values():
        spec = manager.get("SPEC", {})
        if not manager.get("TYPE", "").startswith("Tiled") or "SEQNR" not in spec:
            continue
        needs = 0
        for cube in spec.get("HYPERCUBES", {}).values():
            tiles = math.prod(
                math.ceil(int(n) / int(t)) if t else 0
                for n, t in zip(cube["CubeShape"], cube["TileShape"], strict=True)
            )
            needs += tiles * int(cube["BucketSize"])
        files = f"table.f{spec['SEQNR']}_TSM"
        has = sum(size for name, size in sizes.items() if name.startswith(files))
        if has < needs:
            short.append(Short(tuple(manager["COLUMNS"]), f"{files}*", has, needs))
    return tuple(short)


def describe(ms: Path, inside: Sequence[Inside] | None = None) -> MsInfo:
    """Read the README's facts of one EB from its MS (casacore only, read-only), as
    ``read`` does, with nothing asked that only a reduction needs (``_empty``'s scan of
    every row)."""
    with opened(ms, inside) as table:
        try:
            return _describe(table, ms)
        except RuntimeError as exc:
            raise unreadable(ms, exc) from exc


def _empty(table: Any, columns: tuple[str, ...]) -> tuple[str, ...]:
    """The visibility columns (of ``KEEP``) with cells undefined in some rows: a column
    added and never filled, which would be delivered as an MS without visibilities."""
    kinds = {name for names in KEEP.values() for name in names}
    return tuple(c for c in sorted(kinds & set(columns)) if pairs(table, UNDEFINED.format(c)))


UNDEFINED = "WHERE NOT isdefined({})"
"""For ``pairs``: the rows where a column (``.format``-ted in) holds no data."""


def pairs(table: Any, where: str = "") -> tuple[tuple[int, int], ...]:
    """The distinct (data description, state) of the MS's rows that ``where`` selects."""
    query = f"SELECT DISTINCT DATA_DESC_ID, STATE_ID FROM $1 {where}"
    with contextlib.closing(tables().taql(query, tables=[table])) as found:
        if not found.nrows():
            return ()
        ids = zip(found.getcol("DATA_DESC_ID"), found.getcol("STATE_ID"), strict=True)
        return tuple((int(d), int(s)) for d, s in ids)


def check(ms: Path, transform: Transform, opened: Opened) -> str:
    """The column ``ms`` will deliver; InputError if it has none to deliver, or one that
    holds no data in some rows (never another column in its stead: uncalibrated data
    delivered as calibrated)."""
    kept = _kept(list(opened.columns), transform, ms)
    if kept in opened.empty:
        raise InputError(
            f"the MeasurementSet's {kept} column, which would be delivered, holds no data"
            " in some rows",
            ms,
            fix="fill it (apply the calibration again) or remove the column, then package",
        )
    for cube in opened.short:  # (the reduction copies the cubes delivered unread)
        if any(c == kept or c not in DROPPED for c in cube.columns):
            raise InputError(
                f"the data of {', '.join(cube.columns)}, which would be delivered, are cut"
                f" short ({cube.files}: {cube.has} bytes of the {cube.needs} its tiles"
                " take): a partial copy",
                ms,
                fix="replace it by a complete copy, or remove it from the reduction",
            )
    return kept


def reduce(
    ms: Path,
    dest: Path,
    transform: Transform,
    copy: Place,
    opened: Opened,
    inside: Sequence[Inside],
) -> list[Written]:
    """Write ``ms`` to ``dest`` with one visibility column, named DATA (SPEC §4.2).

    As CASA writes MSes, each visibility column has a storage manager of its own; then the
    MS's files are copied with ``copy`` (the kernel's copy, as fast as ``cp -a``) and
    casacore removes the other columns from the copy and renames the kept one: the values
    are the source's bytes.  Where casacore cannot remove a column alone (it shares a
    tiled storage manager), it value-copies the selected columns instead (slower, streamed
    by rows).  Returns every file of the result.  ``opened``: what ``read`` found of it
    (the source is not opened again); ``inside``: its files and directories as the scan
    listed them (not listed again).
    """
    kept = _kept(list(opened.columns), transform, ms)
    _copy_files(ms, dest, copy, _unneeded(opened.dminfo, kept), inside)
    try:
        _drop_columns(ms, dest, kept)
    except _CannotRemove:
        shutil.rmtree(dest)
        _value_copy(ms, dest, kept, copy, inside)
    if kept != "DATA":
        with open_table(str(dest), ms, readonly=False) as table:
            table.renamecol(kept, "DATA")
    return _sources(ms, dest)


class _CannotRemove(Exception):
    pass


def _unneeded(dminfo: dict[str, Any], kept: str) -> tuple[str, ...]:
    """Name prefixes of the main table's files that hold only columns the reduction
    removes: the cubes of their tiled storage managers (``table.f<N>_TSM<k>``), most of an
    MS's bytes.  They are not copied (removecols deletes those storage managers from the
    copy anyway), so the packpath never holds more than the reduced MS."""
    dropped = DROPPED - {kept}
    return tuple(
        f"table.f{dm['SEQNR']}_TSM"
        for dm in dminfo.values()
        if dm["TYPE"].startswith("Tiled") and set(dm["COLUMNS"]) <= dropped
    )


class Inside(Protocol):
    """A file (``size`` set) or directory of the MS as the scan found it; ``target``: the
    file a link inside it reaches (CASA links a multi-MS's subtables)."""

    @property
    def rel(self) -> str: ...
    @property
    def size(self) -> int | None: ...
    @property
    def target(self) -> str | None: ...


def _copy_files(
    ms: Path, dest: Path, copy: Place, unneeded: tuple[str, ...], inside: Sequence[Inside]
) -> None:
    """Copy the files of ``ms`` (``inside``, from the scan: not listed again) to ``dest``,
    but the main table's files named ``unneeded*``."""
    dest.mkdir()
    for member in inside:  # sorted: a directory comes before what it holds
        if member.size is None:
            (dest / member.rel).mkdir()
        elif "/" in member.rel or not member.rel.startswith(unneeded):
            copy(member.target or str(ms / member.rel), str(dest / member.rel))


def _drop_columns(ms: Path, dest: Path, kept: str) -> None:
    """Remove the visibility columns but ``kept`` from the copy."""
    with open_table(str(dest), ms, readonly=False) as table:  # the copy, never the source
        columns = table.colnames()
        try:
            table.removecols([c for c in columns if c in DROPPED and c != kept])
        except RuntimeError as exc:
            raise _CannotRemove from exc


def _value_copy(ms: Path, dest: Path, kept: str, copy: Place, inside: Sequence[Inside]) -> None:
    """casacore copies the selected columns (``kept`` among the visibility columns) row by
    row.  ``kept`` is renamed afterwards: a hypercube may still reserve the name DATA here."""
    with opened(ms, inside) as table:
        selected = [c for c in table.colnames() if c not in DROPPED] + [kept]
        copy_rows(table, ms, f"SELECT {', '.join(selected)} FROM $1", dest, copy, "packpath")


ROOM = 16 << 20
"""Bytes free that ``copy_rows`` asks of the output's file system before casacore copies a
table's structure (its description, empty data files and subtables: a few MB at most).
A write failing inside that copy throws out of a C++ destructor within casacore, which
aborts the process and which nothing here can catch; the writes of the data that follow
fail as errors (see ``close``)."""


def copy_rows(table: Any, ms: Path, query: str, dest: Path, copy: Place, where: str) -> int:
    """Write the rows and columns that ``query`` (TaQL on ``table`` as ``$1``) selects to a
    new table ``dest``; returns the rows written (with none, nothing is written).

    casacore makes the table's structure (its columns, storage managers and keywords;
    its subtables, left empty, are replaced by ``copy``s of the source's); the values then
    go column by column in runs of rows (``copy_columns``), faster than casacore's own
    copy of a selection, which goes cell by cell.  ``where``: what the user calls
    ``dest``'s directory, for the advice."""
    if "'" in str(dest):
        raise DestinationError(
            "casacore cannot write a table whose path holds a single quote",
            dest,
            fix=f"choose a {where} without ' in it",
        )
    room = os.statvfs(dest.parent)
    if room.f_bavail * room.f_frsize < ROOM:
        raise DestinationError(
            f"the file system has less than {ROOM >> 20} MB free to write the MeasurementSet",
            dest.parent,  # (built in a staging directory, which names it where it is to be)
            fix=f"free some space, or choose another {where}, then run again",
        )
    try:
        selection = tables().taql(query, tables=[table])
    except RuntimeError as exc:
        raise unreadable(ms, exc) from exc
    try:
        rows: int = selection.nrows()
        if rows:
            _copy_subtables(
                selection, selection.copy(str(dest), deep=True, copynorows=True), dest, copy
            )
            with closing(tables().table(str(dest), readonly=False, ack=False)) as made:
                made.addrows(rows)
                cache_buckets(made)
                copy_columns(selection, made)
    except _Unread as exc:  # a data file of the MS damaged (the selection read its ids)
        raise unreadable(ms, exc) from exc
    except RuntimeError as exc:
        raise DestinationError(
            f"casacore could not write the MeasurementSet ({reason(exc)})",
            dest,
            fix=f"check the free space and permissions of the {where}'s file system",
        ) from exc
    finally:
        selection.close()
    return rows


CHUNK_ROWS = 200_000  # rows of a scalar column read or written at a time: bounded memory
_ARRAY_BYTES = 32 << 20  # bytes of an array column read or written at a time (reused)
_BUCKET_CACHE_BYTES = 64 << 20  # of each bucketed storage manager (``cache_buckets``)
_BUCKETED = ("StandardStMan", "IncrementalStMan")


def cache_buckets(table: Any) -> None:
    """Let each bucketed storage manager of ``table`` that holds several columns cache up
    to 64 MB: its buckets hold all its columns' values of a range of rows, and with the 2
    buckets an MS keeps by default, copying the columns one after the other reads and
    writes every bucket again for each column (a split of a 1 GB MS read its 6 MB of
    scalar columns ten times, in 17,000 reads).  Enough for the rows of a chunk
    (``CHUNK_ROWS``), whose columns are copied together.  Not persistent: the table keeps
    its own cache size on disk; casacore caps it at the buckets the table has."""
    for dm in table.getdminfo().values():
        if dm["TYPE"] in _BUCKETED and len(dm["COLUMNS"]) > 1:
            buckets = _BUCKET_CACHE_BYTES // dm["SPEC"]["BUCKETSIZE"]
            table.setdmprop(dm["NAME"], {"MaxCacheSize": buckets}, bycolumn=False)


def copy_columns(source: Any, made: Any) -> None:
    """Copy every column of ``made`` from ``source`` (as many rows, the same columns).

    Scalar columns go a chunk of rows at a time, every column of the chunk together (a
    bucketed storage manager keeps all its columns' values of a range of rows in one
    bucket: ``cache_buckets``).  An array column goes in runs of one data description
    (the rows whose cells have one shape, which casacore reads and writes as one array),
    through one buffer reused for each of its shapes: a new array per read would cost the
    kernel a page fault per 4 KB.
    A column whose cells are not all defined (FLAG_CATEGORY is often left empty) goes cell
    by cell, its defined cells only; so does a run whose cells are not of one shape."""
    rows = source.nrows()
    scalars = [column for column in made.colnames() if made.isscalarcol(column)]
    for start in range(0, rows, CHUNK_ROWS):  # a chunk's buckets are read once for all
        n = min(CHUNK_ROWS, rows - start)
        for column in scalars:
            made.putcol(column, _from_source(source.getcol, column, start, n), start, n)
    spans = list(runs(source))
    for column in made.colnames():
        if column in scalars:
            continue
        with contextlib.closing(_from_source(source.query, f"isdefined({column})")) as defined:
            if defined.nrows() < rows:
                _copy_cells(source, made, column, defined.rownumbers(source))
                continue
        buffers: dict[tuple[tuple[int, ...], str], np.ndarray] = {}
        for start, n in spans:
            try:
                _copy_run(source, made, column, start, n, buffers)
            except RuntimeError:  # not of one shape (or unreadable: so is a cell, then)
                _copy_cells(source, made, column, range(start, start + n))


class _Unread(RuntimeError):
    """casacore could not read a source MS (where it may also be writing a copy): its
    data files are damaged (``unreadable`` says so of the MS)."""


def _from_source(get: Callable[..., Any], *args: Any) -> Any:
    """``get(*args)``, a read of a source MS's table: its failure is ``_Unread``."""
    try:
        return get(*args)
    except RuntimeError as exc:
        raise _Unread(reason(exc)) from exc


def _copy_cells(source: Any, made: Any, column: str, rows: Iterable[int]) -> None:
    for row in rows:
        made.putcell(column, row, _from_source(source.getcell, column, row))


def runs(table: Any) -> Iterator[tuple[int, int]]:
    """(first row, rows) of the runs of rows of one data description, at most
    ``CHUNK_ROWS`` long: the rows whose cells have one shape, which casacore reads and
    writes as one array (all rows, in pieces, in a table without DATA_DESC_ID)."""
    import numpy as np

    rows = table.nrows()
    for start in range(0, rows, CHUNK_ROWS):
        n = min(CHUNK_ROWS, rows - start)
        if "DATA_DESC_ID" not in table.colnames():
            yield start, n
            continue
        dds = table.getcol("DATA_DESC_ID", start, n)
        edges = [0, *(np.flatnonzero(dds[1:] != dds[:-1]) + 1).tolist(), n]
        for first, end in itertools.pairwise(edges):
            yield start + first, end - first


def _copy_run(
    source: Any,
    made: Any,
    column: str,
    start: int,
    n: int,
    buffers: dict[tuple[tuple[int, ...], str], np.ndarray],
) -> None:
    """Copy ``n`` rows of ``column`` from ``start``, cells of the first one's shape, in
    pieces that fit the column's buffer for that shape."""
    import numpy as np

    first = np.asarray(_from_source(source.getcell, column, start))
    key = (first.shape, first.dtype.str)
    if key not in buffers:
        per_row = max(1, _ARRAY_BYTES // max(1, first.nbytes))
        buffers[key] = np.empty((per_row, *first.shape), first.dtype)
    buffer = buffers[key]
    for at in range(start, start + n, len(buffer)):
        piece = buffer[: min(len(buffer), start + n - at)]
        _from_source(source.getcolnp, column, piece, at, len(piece))
        made.putcol(column, piece, at, len(piece))


def _copy_subtables(selection: Any, made: Any, dest: Path, copy: Place) -> None:
    """Replace each subtable of ``dest`` (``made``, the new table open; casacore leaves its
    subtables as empty as itself) by a ``copy`` of the source's (``selection``'s)."""
    subtables = [
        (str(value).removeprefix(_TABLE), os.path.basename(made.getkeyword(name)))
        for name, value in selection.getkeywords().items()
        if str(value).startswith(_TABLE)
    ]
    close(made)
    for source, directory in subtables:
        target = dest / directory
        shutil.rmtree(target)
        for dirpath, _dirs, files in os.walk(source):
            here = target / os.path.relpath(dirpath, source)
            here.mkdir()
            for file in files:
                copy(f"{dirpath}/{file}", f"{here}/{file}")


_TABLE = "Table: "  # how python-casacore gives a keyword that refers to a table


def _sources(ms: Path, dest: Path) -> list[Written]:
    """Each file under ``dest``, with its source under ``ms`` if it is still a copy of it
    (a copy keeps the source's size and mtime; casacore's writes do not)."""
    found: list[Written] = []
    for dirpath, _dirs, files in os.walk(dest):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            source = os.path.join(ms, os.path.relpath(path, dest))
            mine, theirs = os.stat(path), _stat(source)
            same = theirs is not None and (mine.st_size, mine.st_mtime_ns) == (
                theirs.st_size,
                theirs.st_mtime_ns,
            )
            found.append(Written(path, mine.st_size, source if same else None))
    return found


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class Spw:
    id: int
    name: str
    channels: int
    low_hz: float  # lower edge of the lowest channel
    high_hz: float  # upper edge of the highest channel


@dataclass(frozen=True)
class MsInfo:
    """What the README says of an execution block."""

    ms: str  # the MS it was read from (name)
    eb: str
    project: str
    start: datetime
    end: datetime
    antennas: tuple[str, ...]
    spws: tuple[Spw, ...]
    fields: tuple[tuple[str, tuple[str, ...]], ...]  # (field name, its scan intents)


_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)


def _mjd_seconds(value: float) -> datetime:
    return _MJD_EPOCH + timedelta(seconds=float(value))


def _intents(obs_mode: str) -> tuple[str, ...]:
    """``CALIBRATE_PHASE#ON_SOURCE,CALIBRATE_WVR#ON_SOURCE`` -> the intent names."""
    return tuple(dict.fromkeys(m.split("#")[0] for m in obs_mode.split(",") if m))


def _describe(table: Any, ms: Path) -> MsInfo:
    def sub(name: str) -> contextlib.AbstractContextManager[Any]:
        return open_table(table.getkeyword(name), ms)

    with sub("OBSERVATION") as obs:
        ranges = obs.getcol("TIME_RANGE")
        project = str(obs.getcell("PROJECT", 0)) if obs.nrows() else ""
        has_schedule = (
            obs.nrows() and "SCHEDULE" in obs.colnames() and obs.iscelldefined("SCHEDULE", 0)
        )  # importuvfits, split and concat leave the cell undefined
        eb = _eb_uid(obs.getcell("SCHEDULE", 0) if has_schedule else [], ms.name)
    start, end = _span(ranges, table)
    with sub("ANTENNA") as antennas:
        names = tuple(str(n) for n in antennas.getcol("NAME"))
    with sub("SPECTRAL_WINDOW") as spw_table:
        spws = tuple(_spw(spw_table, row) for row in range(spw_table.nrows()))
    with sub("FIELD") as fields:
        field_names = [str(n) for n in fields.getcol("NAME")]
    with sub("STATE") as states:
        modes = [str(m) for m in states.getcol("OBS_MODE")] if states.nrows() else []
    pairs = tables().taql("SELECT DISTINCT FIELD_ID, STATE_ID FROM $1", tables=[table])
    intents: dict[int, dict[str, None]] = {}
    for field_id, state_id in zip(pairs.getcol("FIELD_ID"), pairs.getcol("STATE_ID"), strict=True):
        found = intents.setdefault(int(field_id), {})
        if 0 <= state_id < len(modes):
            found.update(dict.fromkeys(_intents(modes[state_id])))
    pairs.close()

    return MsInfo(
        ms=ms.name,
        eb=eb,
        project=project,
        start=start,
        end=end,
        antennas=names,
        spws=spws,
        fields=tuple(
            (field_names[i], tuple(intents[i])) for i in sorted(intents) if i < len(field_names)
        ),
    )


def _span(ranges: Any, table: Any) -> tuple[datetime, datetime]:
    """The observing span from OBSERVATION's TIME_RANGE, or from the main table's TIME
    where the range is empty (start == end, as split and concat write it)."""
    if len(ranges) and ranges[:, 1].max() > ranges[:, 0].min():
        return _mjd_seconds(ranges[:, 0].min()), _mjd_seconds(ranges[:, 1].max())
    if not table.nrows():
        return _MJD_EPOCH, _MJD_EPOCH
    found = tables().taql("SELECT gmin(TIME) AS lo, gmax(TIME) AS hi FROM $1", tables=[table])
    try:
        return _mjd_seconds(found.getcell("lo", 0)), _mjd_seconds(found.getcell("hi", 0))
    finally:
        found.close()


def _spw(spw_table: Any, row: int) -> Spw:
    freqs = spw_table.getcell("CHAN_FREQ", row)
    widths = abs(spw_table.getcell("CHAN_WIDTH", row))
    return Spw(
        row,
        str(spw_table.getcell("NAME", row)),
        int(spw_table.getcell("NUM_CHAN", row)),
        float(min(freqs - widths / 2)),
        float(max(freqs + widths / 2)),
    )


def _eb_uid(schedule: Any, name: str) -> str:
    """The EB UID of an ALMA MS's OBSERVATION/SCHEDULE (``ExecBlock uid://...``), else its
    file name's UID."""
    for item in schedule:
        if str(item).startswith("ExecBlock "):
            return to_fs(str(item).split(" ", 1)[1])
    return uid_prefix(name) or name
