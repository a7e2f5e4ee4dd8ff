"""``qa2 stage``: turn a pipeline run into a delivery-style package (SPEC §7, seed 001
"Case 1"), which a node images from and ``qa2 package --style cycleN-pipe`` re-packages.

The run's ``products/`` is sorted by the ``pipeline`` rules; ``working/`` and ``rawdata/``
are not staged (the archive delivers the ASDMs).  The build, the marker and the manifest
are the packager's, so a staged package is replaced, verified and split like any other.
"""

from __future__ import annotations

import logging
from pathlib import Path

from almaqa2 import plainfile
from almaqa2.errors import existing_dir
from almaqa2.package import readme
from almaqa2.package.layouts import recognise
from almaqa2.package.layouts.pipeline import find_run, looks_like_run
from almaqa2.package.package_dir import holding
from almaqa2.package.packager import (
    Result,
    build,
    check_destination,
    choice,
    destination,
    pi_script_entry,
    readable_file,
)
from almaqa2.package.plan import Plan, Uids, make_plan
from almaqa2.package.rules import PIPELINE_README, STAGE
from almaqa2.package.rules import STAGE_MODES as MODES
from almaqa2.progress import Progress

log = logging.getLogger(__name__)


def _header(plan: Plan, pipe_readme: Path | None) -> str:
    """The staged README's header: the file given, else the pipeline's README, else ours."""
    if pipe_readme is not None:
        path = readable_file(pipe_readme, "pipeline README", "give a readable text file")
        return plainfile.text(path, "pipeline README")
    found = [
        e.path
        for e in plan.reduction.entries
        if len(e.rel.parts) == 1 and PIPELINE_README.fullmatch(e.name)
    ]
    return plainfile.text(found[0], "pipeline README") if found else readme.TEMPLATE


def _resolve(pipeline_root: Path, staged_root: Path, mode: str) -> tuple[Path, Path]:
    """The run's directory and the staged package's path, once both are checked."""
    choice(mode, MODES, "mode")
    root = existing_dir(
        pipeline_root, "pipeline root", "give the top directory of the pipeline run"
    )
    return root, destination(staged_root, root)


def _plan(root: Path, staged: Path, mode: str, pi_script: Path | None) -> Plan:
    check_destination(staged)
    if not looks_like_run(root):
        find_run(root)  # says precisely what is missing
    reduction = recognise(root)
    return make_plan(
        reduction,
        STAGE,
        project=staged.name,
        mode=mode,
        append="",
        uids=Uids(reduction.sg, reduction.gous, reduction.mous),
        existing={},
        packpath=str(staged),
        readme=None,
        pi_script=pi_script_entry(pi_script),
    )


def prepare(
    pipeline_root: Path, staged_root: Path, mode: str = "copy", pi_script: Path | None = None
) -> Plan:
    """Check the arguments and plan the staged package; reads, never writes (--dry-run)."""
    return _plan(*_resolve(pipeline_root, staged_root, mode), mode, pi_script)


def stage(
    pipeline_root: Path,
    staged_root: Path,
    mode: str = "copy",
    pi_script: Path | None = None,
    pipe_readme: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    """Stage the pipeline run at ``pipeline_root`` into ``staged_root`` (a project code)."""
    root, staged = _resolve(pipeline_root, staged_root, mode)
    with holding(staged):
        plan = _plan(root, staged, mode, pi_script)
        built = build(plan, staged, _header(plan, pipe_readme), progress)
    return Result(plan, staged, staged / plan.member_path, (), built.manifest, built.sizes)
