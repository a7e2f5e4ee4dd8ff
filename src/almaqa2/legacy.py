"""The old CASA-era calls, kept working on top of the library.

``QA_Packager(origpath, readme, packpath, append='', mode='fake', style='', PIscript='',
noms=False)`` behaves as ``qa2 package``.  Paths may end in ``/``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .packager import Request, Result, package


def _path(value: str) -> Path:
    return Path(value.rstrip("/") or "/")


def QA_Packager(
    origpath: str,
    readme: str,
    packpath: str,
    append: str = "",
    mode: str = "fake",
    style: str = "",
    PIscript: str = "",
    noms: bool = False,
    sg: str | None = None,
    gous: str | None = None,
    mous: str | None = None,
    sb_name: str | None = None,
    strict: bool = False,
) -> Result:
    """Package the SB reduction at ``origpath`` into ``packpath`` (see ``qa2 package``)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="QA_Packager: %(message)s")
    return package(
        Request(
            origpath=_path(origpath),
            packpath=_path(packpath),
            readme=Path(readme),
            mode=mode,
            append=append,
            style=style,
            noms=noms,
            pi_script=_path(PIscript) if PIscript else None,
            sg=sg,
            gous=gous,
            mous=mous,
            sb_name=sb_name,
            strict=strict,
        )
    )
