"""The old CASA-era calls, kept working on top of the library.

``QA_Packager(origpath, readme, packpath, append='', mode='fake', style='', PIscript='',
noms=False)`` behaves as ``qa2 package``, ``QA_Pipeline_Stager(pipeline_root, staged_root,
mode='copy', PIscript='', PIPE_README=None)`` as ``qa2 stage``.  Paths may end in ``/``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from almaqa2.package import readme
from almaqa2.package.packager import Request, Result, package
from almaqa2.package.scan import Kind


def _path(value: str) -> Path:
    return Path(value.rstrip("/") or "/")


def _log_to_terminal(caller: str) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format=f"{caller}: %(message)s")


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
    allow_blank_header: bool = False,
) -> Result:
    """Package the SB reduction at ``origpath`` into ``packpath`` (see ``qa2 package``)."""
    _log_to_terminal("QA_Packager")
    result = package(
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
            allow_blank_header=allow_blank_header,
        )
    )
    print("the following package was created:")
    print("\n".join(_tree(result)))
    return result


def _tree(result: Result) -> list[str]:
    """The member's tree from the project directory down, as the original printed it
    (directories and tables end in ``/``; no sizes)."""
    plan = result.plan
    items = [readme.TreeItem(plan.member_path / plan.readme_name, False, None)]
    items += [
        readme.TreeItem(
            plan.member_path / p.packaged, p.source.kind is not Kind.FILE and not p.bundle, None
        )
        for p in plan.placements
    ]
    return readme.tree(plan.project, items, ())


def QA_Pipeline_Stager(
    pipeline_root: str,
    staged_root: str,
    mode: str = "copy",
    PIscript: str = "",
    PIPE_README: str | None = None,
) -> Result:
    """Stage the pipeline run at ``pipeline_root`` into ``staged_root`` (see ``qa2 stage``)."""
    from almaqa2.package.stage import stage

    _log_to_terminal("QA_Pipeline_Stager")
    return stage(
        _path(pipeline_root),
        _path(staged_root),
        mode,
        _path(PIscript) if PIscript else None,
        Path(PIPE_README) if PIPE_README else None,
    )
