"""What one worker does for one MOUS: the steps asked (the same library calls as the single
commands), or nothing when the ledger shows them done with the same inputs and what they
made is still there.  Returns the MOUS's ledger record.

A failure of this MOUS (bad input, disk full, a verify mismatch) is recorded with its one
sentence and the batch goes on; only a lock held by someone else is raised, for Dask to
retry.  A retry, or a rerun after the worker was killed, is safe: the packager and tarsplit
build in staging under a lock and tidy what a killed run left.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from almaqa2.batch.ledger import Record
from almaqa2.batch.plan import Job
from almaqa2.errors import Almaqa2Error, LockedError, refused
from almaqa2.package.package_dir import MARKER, Package
from almaqa2.version import __version__


def run(job: Job, steps: tuple[str, ...], previous: Record | None, force: bool) -> Record:
    """Do ``steps`` for ``job`` (see the module); ``previous``: its last ledger record."""
    started = time.time()
    record: Record = {
        "name": job.name,
        "steps": list(steps),
        "packpath": str(job.packpath),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "worker": _worker(),
    }
    made: list[Path] = []
    with _warnings() as warnings:
        try:
            record["fingerprint"] = fingerprint(job)
            if not force and _unchanged(job, steps, previous, record["fingerprint"]):
                assert previous is not None
                record |= {k: previous[k] for k in _CARRIED if k in previous}
                record["status"] = "skipped"
            else:
                record["status"] = "done"
                made = _made_room(job, steps)
                if "package" in steps:
                    record |= _package(job)
                if "tarsplit" in steps:
                    record |= _tarsplit(job)
            if "verify" in steps:
                record["verified"] = _verify(job, record.get("chunks"))
        except LockedError:
            raise  # someone else is at it: Dask retries (--retries)
        except Almaqa2Error as exc:
            record |= {"status": "failed", "error": str(exc)}
        except OSError as exc:
            record |= {"status": "failed", "error": refused(exc)}
    if record["status"] == "failed":
        for folder in reversed(made):  # what _made_room made, if nothing was put in it
            with contextlib.suppress(OSError):
                folder.rmdir()
    record["warnings"] = warnings
    record["seconds"] = round(time.time() - started, 3)
    return record


_CARRIED = ("bytes", "files", "marker", "chunks", "md5sums", "tickets")
"""What a skipped MOUS's record keeps from the record of the run that made it."""


def _worker() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


@contextlib.contextmanager
def _warnings() -> Iterator[list[str]]:
    """The warnings the library logs meanwhile (unclassified files, no scriptForPI...)."""
    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    handler = Keep(logging.WARNING)
    logger = logging.getLogger("almaqa2")
    logger.addHandler(handler)
    try:
        yield said
    finally:
        logger.removeHandler(handler)


def fingerprint(job: Job) -> str:
    """What the result depends on: the job's settings, this version of almaqa2, every entry
    of origpath (name, size, time), the files beside it (Allegro's checklists) and the
    README header, scriptForPI and pipeline README given."""
    digest = hashlib.sha256(json.dumps([job.as_dict(), __version__], sort_keys=True).encode())
    top = str(job.origpath)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames) + dirnames:
            st = os.lstat(os.path.join(dirpath, name))
            rel = os.path.join(dirpath, name)[len(top) :]
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode(errors="replace"))
    for beside in sorted(job.origpath.parent.glob("*")):
        if beside.is_file():
            st = beside.stat()
            digest.update(f"../{beside.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    for key in ("readme", "pi-script", "pipe-readme"):
        given = job.path(key)
        if given is not None and given.is_file():
            digest.update(given.read_bytes())
    return digest.hexdigest()


def _unchanged(job: Job, steps: tuple[str, ...], previous: Record | None, inputs: str) -> bool:
    """True if ``previous`` did these steps with the same inputs and what it made is there
    as it made it: the package's marker, its files those its manifest lists, each chunk
    of its size.  (The ``verify`` step always reads every byte again.)"""
    if previous is None or previous.get("status") not in ("done", "skipped"):
        return False
    if previous.get("fingerprint") != inputs:
        return False
    if not set(steps) - {"verify"} <= set(previous.get("steps", ())):
        return False
    package = Package(job.packpath)
    if "package" in steps:
        if _marker_digest(job) != previous.get("marker"):
            return False
        listed = package.digests()  # none in fake mode: the marker speaks for it
        if listed and set(listed) != set(package.files()):
            return False
    for chunk in previous.get("chunks", []) if "tarsplit" in steps else ():
        path = job.chunks / chunk["name"]
        if not path.is_file() or path.stat().st_size != chunk["size"]:
            return False
    return True


def _marker_digest(job: Job) -> str | None:
    try:
        return hashlib.sha256((job.packpath / MARKER).read_bytes()).hexdigest()
    except OSError:
        return None


def _made_room(job: Job, steps: tuple[str, ...]) -> list[Path]:
    """Make the package's directory (``<out>/<name>``) and the chunks' directory where
    the directory they go in exists; returns those it made."""
    made = []
    for folder in job.folders(steps):
        if folder.parent.is_dir() and not folder.exists():
            folder.mkdir()
            made.append(folder)
    return made


def _package(job: Job) -> Record:
    if job.kind == "run":
        from almaqa2.package.stage import stage

        result = stage(
            job.origpath, job.packpath, job.mode, job.path("pi-script"), job.path("pipe-readme")
        )
    else:
        from almaqa2.package.packager import Request, package

        settings = job.settings
        result = package(
            Request(
                job.origpath,
                job.packpath,
                readme=Path(settings["readme"]),
                mode=job.mode,
                style=settings.get("style", ""),
                noms=settings.get("noms", False),
                pi_script=job.path("pi-script"),
                sg=settings.get("sg"),
                gous=settings.get("gous"),
                mous=settings.get("mous"),
                sb_name=settings.get("sb-name"),
                strict=settings.get("strict", False),
            )
        )
    return {
        "bytes": sum(result.sizes.values()),
        "files": len(result.sizes),
        "marker": _marker_digest(job),
        "tickets": [str(p) for p in result.tickets],
    }


def _tarsplit(job: Job) -> Record:
    from almaqa2.transfer.tarsplit import tarsplit

    settings = job.settings
    split = tarsplit(
        job.packpath,
        job.chunks,
        str(settings.get("max-size", "10G")),
        settings.get("date"),
        settings.get("auxiliary", False),
    )
    chunks = [{"name": c.name, "size": c.size, "md5": split.digests[c.name]} for c in split.chunks]
    return {"chunks": chunks, "md5sums": str(split.md5sums)}


def _verify(job: Job, chunks: list[Record] | None) -> int:
    """Every byte checked: of the chunks if they were made, else of the package.  Returns
    how many files and chunks were checked; a mismatch fails the MOUS."""
    from almaqa2.transfer.verify import VerificationError, verify

    paths = [job.chunks / c["name"] for c in chunks] if chunks else [job.packpath]
    report = verify(paths)
    if not report.ok:
        raise VerificationError(report)
    return report.checked
