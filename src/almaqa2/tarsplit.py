"""``qa2 tarsplit``: a package as tar chunks named as the ALMA archive names them (SPEC §8).

Planning (which file goes in which chunk, and the names) is pure; writing streams each file
once into its chunk while a second thread hashes the chunk's bytes.  A chunk is written as
``<name>.part``; its ``.md5sum`` file is written before the chunk is renamed to its final
name, so a finished-looking ``.tar`` always has its checksum beside it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import queue
import re
import stat
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from . import manifest
from .errors import DestinationError, InputError
from .uid import PROJECT_CODE, UID_FS, check_project_code

log = logging.getLogger(__name__)

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
_COPY = 4 << 20
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)B?$", re.I)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
CHUNK_NAME = re.compile(
    rf"^(?P<project>{PROJECT_CODE.pattern.strip('^$')})_(?P<tag>.+)"
    r"_(?:(?P<n>\d{3})_of_(?P<total>\d{3})|auxiliary)\.tar$"
)
"""What ``chunk_name`` writes, read back: project, tag, number and total (or auxiliary)."""


@dataclass(frozen=True)
class Entry:
    rel: PurePosixPath  # inside the tar: starts with the project code
    path: Path  # on disk
    size: int  # bytes of the file; -1 for an (empty) directory entry
    mode: int
    mtime: int

    def info(self) -> tarfile.TarInfo:
        """The tar header of this entry: regular file (or directory), no owner names."""
        info = tarfile.TarInfo(self.rel.as_posix())
        info.mtime, info.mode = self.mtime, self.mode
        info.uname = info.gname = ""
        if self.size < 0:
            info.type = tarfile.DIRTYPE
        else:
            info.size = self.size
        return info


@dataclass(frozen=True)
class Chunk:
    name: str  # file name of the tar
    entries: tuple[Entry, ...]
    size: int  # bytes of the tar, exactly


def parse_size(text: str) -> int:
    """``10G``, ``500M``, ``2048`` (bytes) -> bytes."""
    found = _SIZE.match(text.strip())
    if not found or float(found[1]) <= 0:
        raise InputError(f"'{text}' is not a size", fix="write it like 10G, 500M or 2048")
    return int(float(found[1]) * _UNITS[found[2].upper()])


def member_size(entry: Entry) -> int:
    """Bytes ``entry`` takes in a tar: its header exactly as tarfile writes it (with the
    PAX header a long or non-ASCII name needs) and its data padded to whole blocks."""
    header = entry.info().tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    return len(header) + -(-max(entry.size, 0) // BLOCK) * BLOCK


def tar_size(members: int) -> int:
    """The size of a tar whose members take ``members`` bytes: they, two zero blocks, and
    padding to a whole record."""
    return -(-(members + 2 * BLOCK) // RECORD) * RECORD


def tag_of(packpath: Path, date: str | None) -> str:
    """The MOUS UID when the package has exactly one member named by it, else the date."""
    members = {
        found.group(0)
        for p in packpath.glob("*/*/member.*")
        if p.is_dir() and (found := UID_FS.search(p.name))
    }
    if len(members) == 1 and date is None:
        return members.pop()
    if date is None:
        return dt.date.today().strftime("%Y_%m_%d")
    try:
        return dt.date.fromisoformat(date).strftime("%Y_%m_%d")
    except ValueError:
        raise InputError(f"'{date}' is not a date", fix="write it as YYYY-MM-DD") from None


def entries_of(packpath: Path) -> list[Entry]:
    """Every file of the package (the manifest first) and every empty directory, sorted."""
    project = packpath.name
    found: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(packpath):
        dirnames.sort()
        here = Path(dirpath)
        rel = PurePosixPath(project, *here.relative_to(packpath).parts)
        if not dirnames and not filenames:
            st = here.stat()
            found.append(Entry(rel, here, -1, st.st_mode & 0o7777, int(st.st_mtime)))
        for name in sorted(filenames):
            path = here / name
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode):
                raise InputError(
                    "a package holds only files and directories, and this is not one",
                    path,
                    fix="remove it, or package again with qa2 package",
                )
            found.append(Entry(rel / name, path, st.st_size, st.st_mode & 0o7777, int(st.st_mtime)))
    first = PurePosixPath(project, manifest.NAME)
    return sorted(found, key=lambda e: (e.rel != first, e.rel.as_posix()))


def plan(
    packpath: Path, max_size: int, tag: str, auxiliary: bool
) -> tuple[list[Chunk], list[Entry]]:
    """The chunks (with their names) and the files larger than the limit (alone each)."""
    project = packpath.name
    entries = entries_of(packpath)
    chunks: list[Chunk] = []
    if auxiliary:
        products: list[Entry] = []
        rest: list[Entry] = []
        for entry in entries:
            (products if "product" in entry.rel.parts[1:] else rest).append(entry)
        size = tar_size(sum(member_size(e) for e in rest))
        chunks.append(Chunk(chunk_name(project, tag), tuple(rest), size))
        entries = products
    groups: list[tuple[list[Entry], int]] = []  # (entries, bytes of their members)
    too_big = []
    group: list[Entry] = []
    members = 0
    for entry in entries:
        size = member_size(entry)
        if group and tar_size(members + size) > max_size:
            groups.append((group, members))
            group, members = [], 0
        group.append(entry)
        members += size
        if tar_size(size) > max_size:  # alone in its chunk: nothing may join it
            too_big.append(entry)
            groups.append((group, members))
            group, members = [], 0
    if group:
        groups.append((group, members))
    total = len(groups)
    chunks += [
        Chunk(chunk_name(project, tag, n, total), tuple(files), tar_size(nbytes))
        for n, (files, nbytes) in enumerate(groups, 1)
    ]
    return chunks, too_big


def chunk_name(project: str, tag: str, n: int = 0, total: int = 0) -> str:
    """``<project>_<tag>_<NNN>_of_<MMM>.tar``, or the auxiliary tar's name when ``n`` is 0."""
    return f"{project}_{tag}_" + (f"{n:03d}_of_{total:03d}.tar" if n else "auxiliary.tar")


def list_name(project: str, tag: str) -> str:
    return f"{project}_{tag}.md5sums"


Progress = Callable[[int, int], None]


def write(chunks: list[Chunk], out: Path, progress: Progress | None = None) -> dict[str, str]:
    """Write every chunk and its ``.md5sum`` into ``out``; returns {chunk name: md5}."""
    total = sum(max(e.size, 0) for c in chunks for e in c.entries)
    done = 0
    digests = {}
    for chunk in chunks:
        final = out / chunk.name
        part = out / f"{chunk.name}.part"
        try:
            digests[chunk.name] = _write_chunk(chunk, part)
            _write_text(out / f"{chunk.name}.md5sum", f"{digests[chunk.name]}  {chunk.name}\n")
            os.replace(part, final)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise DestinationError(
                f"could not write the chunk ({exc.strerror})",
                final,
                fix="free some space or choose another --out, then run again",
            ) from exc
        done += sum(max(e.size, 0) for e in chunk.entries)
        if progress:
            progress(done, total)
    return digests


def write_list(out: Path, name: str, digests: dict[str, str]) -> Path:
    path = out / name
    _write_text(path, "".join(f"{d}  {n}\n" for n, d in sorted(digests.items())))
    return path


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text)
    os.replace(tmp, path)


class _HashingWriter:
    """A file that hashes what is written to it on another thread (hashlib frees the GIL)."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._written = 0
        self._md5 = hashlib.md5()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._hash, daemon=True)
        self._thread.start()

    def _hash(self) -> None:
        while (block := self._queue.get()) is not None:
            self._md5.update(block)

    def write(self, data: bytes) -> int:
        block = bytes(data)
        self._raw.write(block)
        self._queue.put(block)
        self._written += len(block)
        return len(block)

    def tell(self) -> int:
        return self._written

    def hexdigest(self) -> str:
        self._queue.put(None)
        self._thread.join()
        return self._md5.hexdigest()


def _write_chunk(chunk: Chunk, part: Path) -> str:
    with open(part, "wb") as raw:
        out = _HashingWriter(raw)
        try:
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
                tar.copybufsize = _COPY
                for entry in chunk.entries:
                    _add(tar, entry)
        finally:
            digest = out.hexdigest()
        raw.flush()
        os.fsync(raw.fileno())
    return digest


def _add(tar: tarfile.TarFile, entry: Entry) -> None:
    if entry.size < 0:
        tar.addfile(entry.info())
        return
    with open(entry.path, "rb") as f:
        if os.fstat(f.fileno()).st_size != entry.size:
            raise InputError(
                "the file changed size while it was being split", entry.path, fix="run again"
            )
        tar.addfile(entry.info(), f)


@dataclass(frozen=True)
class Split:
    chunks: tuple[Chunk, ...]
    digests: dict[str, str]
    md5sums: Path


def tarsplit(
    packpath: Path,
    out: Path | None = None,
    max_size: str = "10G",
    date: str | None = None,
    auxiliary: bool = False,
    progress: Progress | None = None,
) -> Split:
    """Split the package at ``packpath`` into chunks in ``out`` (default: beside it)."""
    if not packpath.is_dir():
        raise InputError("the package directory was not found", packpath, fix="give a packpath")
    packpath = Path(os.path.realpath(packpath))
    check_project_code(packpath.name)
    out = Path(os.path.realpath(out or packpath.parent))
    if not out.is_dir():
        raise InputError("the output directory does not exist", out, fix="create it first")
    if out.is_relative_to(packpath):
        raise DestinationError(
            "the chunks cannot be written inside the package they hold",
            out,
            fix="choose an --out outside the package",
        )
    limit = parse_size(max_size)
    tag = tag_of(packpath, date)
    for stale in out.glob(f"{packpath.name}_{tag}_*.part"):
        log.info("removing an interrupted chunk: %s", stale)
        stale.unlink()
    chunks, too_big = plan(packpath, limit, tag, auxiliary)
    for entry in too_big:
        log.warning("larger than --max-size %s, so alone in its chunk: %s", max_size, entry.path)
    digests = write(chunks, out, progress)
    return Split(tuple(chunks), digests, write_list(out, list_name(packpath.name, tag), digests))
