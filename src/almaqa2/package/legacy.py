"""The old CASA-era calls, kept working on top of the library, and the standalone
``QA2_Packaging_module.py`` that brings them into any CASA's Python.

``QA_Packager(origpath, readme, packpath, append='', mode='fake', style='', PIscript='',
noms=False)`` behaves as ``qa2 package``, ``QA_Pipeline_Stager(pipeline_root, staged_root,
mode='copy', PIscript='', PIPE_README=None)`` as ``qa2 stage``.  Paths may end in ``/``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
from pathlib import Path

from almaqa2 import destination
from almaqa2.atomic import write_atomically
from almaqa2.errors import InputError
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
    print("\n".join(printed_tree(result)))
    return result


def printed_tree(result: Result) -> list[str]:
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


MODULE = "QA2_Packaging_module"
_DEFAULT_LINE = "QA2_DEFAULT = None"


def this_qa2() -> Path:
    """The ``qa2`` of this installation: beside the Python running it (a venv's bin/)."""
    beside = Path(sys.executable).parent / "qa2"
    found = beside if beside.is_file() else shutil.which("qa2")
    if found is None:
        raise InputError(
            "this installation has no qa2 command beside its Python or on the PATH",
            sys.executable,
            fix="install almaqa2 with pip into this Python first",
        )
    return Path(os.path.abspath(found))


def module_text(qa2: Path) -> str:
    """The standalone module, with ``qa2`` as the command it runs when neither QA2 nor
    the PATH names one."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or spec.origin is None:
        raise InputError(f"{MODULE}.py is not installed with almaqa2", fix="reinstall almaqa2")
    text = Path(spec.origin).read_text(encoding="utf-8")
    if _DEFAULT_LINE not in text:
        raise InputError(f"{MODULE}.py has no line '{_DEFAULT_LINE}'", spec.origin,
                         fix="reinstall almaqa2")  # fmt: skip
    return text.replace(_DEFAULT_LINE, f"QA2_DEFAULT = {str(qa2)!r}", 1)


def install_module(directory: Path, dry_run: bool = False) -> tuple[Path, Path]:
    """Write the module into ``directory`` (its last level made if missing), where a
    reducer's CASA imports it; returns (the file, the qa2 it runs)."""
    qa2 = this_qa2()
    text = module_text(qa2)
    target = destination.planned(directory, "the directory for the module") / f"{MODULE}.py"
    if not dry_run:
        with destination.made(target.parent):
            write_atomically(target, text)
    return target, qa2
