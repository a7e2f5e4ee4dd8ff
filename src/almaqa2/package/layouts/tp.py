"""Total-power (single-dish) reductions: recognised by their scripts (SPEC §4, seed 001).

Any ``*scriptForSD*.py`` (in any case) makes the reduction a TP one; the standard names are
``<EB>.ms.scriptForSDcalibration.py`` per EB and ``scriptForSDimaging.py``.  Scripts with
other names are still packaged, and named in a warning so the reducer can check them.
"""

from __future__ import annotations

import re

from almaqa2.package.scan import Kind, SourceEntry

SD_SCRIPT = re.compile(r"(?i).*scriptforsd.*\.py")
STANDARD = re.compile(r".*\.scriptForSDcalibration\.py|scriptForSDimaging\.py")


def sd_scripts(entries: tuple[SourceEntry, ...]) -> tuple[SourceEntry, ...]:
    return tuple(e for e in entries if e.kind is Kind.FILE and SD_SCRIPT.fullmatch(e.name))


def nonstandard(scripts: tuple[SourceEntry, ...]) -> tuple[SourceEntry, ...]:
    return tuple(e for e in scripts if not STANDARD.fullmatch(e.name))
