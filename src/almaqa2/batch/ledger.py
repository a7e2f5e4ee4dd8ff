"""The batch ledger: one JSON line per MOUS and run, beside the PLAN, so that a rerun knows
what is done and with which inputs.

Only the ``qa2 batch`` process writes it (the workers return their records), under a lock:
each record is one ``write`` of a whole line to a file opened for appending; a line a crash
cut short is not JSON and is ignored when read.  The last record of a MOUS is its state.
Records are not forced to disk one by one: on ext4 an ``fsync`` also writes out every file
the batch has just made, which stalled a batch for the disk.  After a power cut the last
records may be missing, and those MOUSes are simply done again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATUSES = ("done", "skipped", "failed")
"""A MOUS's state, as its record says."""

Record = dict[str, Any]
"""name, status (done | skipped | failed), fingerprint, steps, started, seconds, bytes,
packpath, chunks, md5sums, verified, error, worker."""


def read(path: Path) -> dict[str, Record]:
    """{MOUS name: its last whole record} (empty if there is no ledger yet)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    last: dict[str, Record] = {}
    for line in data.split(b"\n"):
        try:
            record = json.loads(line)
        except ValueError:
            continue  # empty, or cut short by a crash
        if (
            isinstance(record, dict)
            and isinstance(record.get("name"), str)
            and record.get("status") in STATUSES
        ):  # (one that is not ours, edited by hand: ignored too)
            last[record["name"]] = record
    return last


class Writer:
    """Appends records to the ledger at ``path``, each whole."""

    def __init__(self, path: Path):
        self.path = path
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(path, flags, 0o644)
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            os.write(self._fd, b"\n")  # a line cut short stays alone on its line

    def add(self, record: Record) -> None:
        os.write(self._fd, json.dumps(record, sort_keys=True).encode() + b"\n")

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
