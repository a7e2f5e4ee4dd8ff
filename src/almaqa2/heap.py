"""A ``qa2`` command keeps the memory it frees, for the next allocations, until it ends.

glibc's malloc gives the top of its heap back to the kernel whenever 128 KB of it is free
(``M_TRIM_THRESHOLD``), and blocks of 128 KB or more are mapped and unmapped one by one
(``M_MMAP_THRESHOLD``).  Packaging and verifying read tens of thousands of small files
into new ``bytes``, a batch at a time, and free each batch: every page of the next was
then taken again from the kernel, a page fault each.  Measured in hard mode on a cycle-0
SB of 47,920 files: 172,000 page faults, 35,000 once the memory is kept; 2.0 s, 1.65 s.

A ``qa2`` process ends when its command does, and gives back all it has then; its helpers
are forked from it and inherit the setting.  A long-lived process that imports almaqa2
(a Dask worker of ``qa2 batch``, a CASA session calling ``QA_Packager``) is left as it
is.  Nothing is done where the C library is not glibc.
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
KEPT = 256 << 20
"""Free memory kept at the top of the heap (bytes): well above what the batches of small
files in flight at once hold (a few MB each)."""
MAPPED = 4 << 20
"""Blocks from this size are mapped on their own: one of 1 MB (a buffer of the hashing) is
reused from the heap, not faulted in anew; a larger one (a list or dict of a million
files) still grows in place (mremap), where in the heap it would leave its old copy as a
hole.  At 32 MB, verifying the chunks of a million files peaked at 700 MB, against 554."""


def keep_freed() -> None:
    """Tell malloc to keep what is freed (above)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(_M_TRIM_THRESHOLD, KEPT)
    mallopt(_M_MMAP_THRESHOLD, MAPPED)
