"""CASA itself (casatools, casatasks, casadata from PyPI), run as a program of its own in
its own venv, for ``make interop`` and ``benchmarks/split_bench.py``; never by the tests:
it is heavy."""

from __future__ import annotations

import os
from pathlib import Path

CONFIG = """\
import casadata
measurespath = casadata.datapath
measures_auto_update = False
data_auto_update = False
nologfile = True
"""
"""``~/.casa/config.py``: the measures casadata ships, no auto-update (no network)."""

SEED_003 = """\
import os, sys, casatools
from casatasks import split, flagmanager
vis, datacolumn, out, field = sys.argv[1:5]
msmd = casatools.msmetadata()
msmd.open(vis)
spws = ','.join(str(s) for s in msmd.spwsforintent('OBSERVE_TARGET*') if msmd.nchan(s) > 4)
msmd.close()
cal = os.path.join(out, os.path.basename(vis) + '.split.cal')
split(vis=vis, outputvis=cal, spw=spws, datacolumn=datacolumn)
flagmanager(vis=cal, mode='save', versionname='original_flags')
splits = [('.source', dict(intent='*TARGET*'))]
if field:
    splits.append(('.field', dict(intent='*', field=field)))
for name, selection in splits:
    split(vis=cal, outputvis=cal + name, datacolumn='data', **selection)
    os.system('rm -rf ' + cal + name + '.flagversions')
    flagmanager(vis=cal + name, mode='save', versionname='original_flags')
"""
"""Seed 003's steps as a PI types them in CASA: the science spws found with msmd, split,
flags saved, the targets split and their flags saved; with a field, a field split of the
``.split.cal`` too.  Arguments: VIS DATACOLUMN OUT_DIR FIELD ('' for none)."""


def environment(home: Path) -> dict[str, str]:
    """The environment to run CASA in, with ``home`` as its HOME (CONFIG written there)."""
    (home / ".casa").mkdir(parents=True, exist_ok=True)
    (home / ".casa" / "config.py").write_text(CONFIG)
    return {**os.environ, "HOME": str(home)}
