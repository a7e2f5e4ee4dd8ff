"""``qa2 stage``: turn a pipeline run into a delivery-style package (SPEC §7, seed 001
"Case 1"), which a node images from and ``qa2 package --style cycleN-pipe`` re-packages.

The run's ``products/`` is sorted by the ``pipeline`` rules; ``working/`` and ``rawdata/``
are not staged (the archive delivers the ASDMs).  The build, the marker and the manifest
are the packager's, so a staged package is replaced, verified and split like any other.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from . import readme
from .errors import existing_dir
from .layouts import Reduction, ebs_named
from .layouts.pipeline import PipelineRun, find_run
from .packager import (
    Progress,
    Result,
    build,
    check_destination,
    choice,
    destination,
    holding,
    pi_script_entry,
    readable_file,
)
from .plan import Plan, Uids, make_plan
from .rules import STAGE
from .scan import scan

log = logging.getLogger(__name__)

MODES = ("copy", "hard", "fake")
_PIPELINE_README = re.compile(r"(?i)readme.*")


def _header(run: PipelineRun, pipe_readme: Path | None) -> str:
    """The staged README's header: the file given, else the pipeline's README, else ours."""
    if pipe_readme is not None:
        path = readable_file(pipe_readme, "pipeline README", "give a readable text file")
        return path.read_text(errors="replace")
    found = sorted(p for p in run.products.iterdir() if _PIPELINE_README.fullmatch(p.name))
    return found[0].read_text(errors="replace") if found else readme.TEMPLATE


def prepare(
    pipeline_root: Path, staged_root: Path, mode: str = "copy", pi_script: Path | None = None
) -> tuple[PipelineRun, Plan]:
    """Check the arguments and plan the staged package; reads, never writes (--dry-run)."""
    choice(mode, MODES, "mode")
    root = existing_dir(
        pipeline_root, "pipeline root", "give the top directory of the pipeline run"
    )
    run = find_run(root)
    staged = destination(staged_root, root)
    check_destination(staged)
    entries = scan(run.products)
    ebs = ebs_named(entries, run.products, also=run.ebs)
    reduction = Reduction(run.products, "pipeline", entries, ebs, mous=run.mous)
    plan = make_plan(
        reduction,
        STAGE,
        project=staged.name,
        mode=mode,
        append="",
        uids=Uids(run.sous, run.gous, run.mous),
        existing={},
        packpath=str(staged),
        readme=None,
        pi_script=pi_script_entry(pi_script),
    )
    return run, plan


def stage(
    pipeline_root: Path,
    staged_root: Path,
    mode: str = "copy",
    pi_script: Path | None = None,
    pipe_readme: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    """Stage the pipeline run at ``pipeline_root`` into ``staged_root`` (a project code)."""
    staged = destination(staged_root, Path(os.path.realpath(pipeline_root)))
    with holding(staged):
        run, plan = prepare(pipeline_root, staged_root, mode, pi_script)
        built = build(plan, staged, _header(run, pipe_readme), progress)
    return Result(plan, staged, staged / plan.member_path, (), built.manifest, built.sizes)
