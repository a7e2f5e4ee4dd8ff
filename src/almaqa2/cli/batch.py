"""``qa2 batch``: many MOUSes at once on Dask distributed (``almaqa2.batch``)."""

from __future__ import annotations

from pathlib import Path

import click

from almaqa2.atomic import write_new
from almaqa2.cli import render
from almaqa2.cli.app import cli, err, progress_bar
from almaqa2.errors import DestinationError, InputError


@cli.command("batch", short_help="Package, split and verify many MOUSes on Dask.")
@click.argument("plan_file", metavar="PLAN", type=click.Path(path_type=Path))
@click.option(
    "--init",
    "init_dir",
    type=click.Path(path_type=Path),
    help="Write PLAN listing every reduction found under this directory.",
)
@click.option("--scheduler", help="Address of a running Dask scheduler (tcp://host:8786).")
@click.option(
    "--scheduler-file",
    type=click.Path(path_type=Path),
    help="The scheduler file of a running Dask cluster.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Without a scheduler: worker processes here (default: the cores).",
)
@click.option(
    "--steps",
    default="package",
    show_default=True,
    help="Comma-separated, in order: package,tarsplit,verify.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Tries again a task that found its package locked by someone else.",
)
@click.option("--force", is_flag=True, help="Redo MOUSes the ledger shows done.")
@click.option("--dry-run", is_flag=True, help="Show the jobs and their ledger state; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def batch_cmd(
    plan_file: Path, init_dir: Path | None, scheduler: str | None, scheduler_file: Path | None,
    workers: int | None, steps: str, retries: int, force: bool, dry_run: bool, as_json: bool,
) -> None:  # fmt: skip
    """Package (and split, and verify) every MOUS of the TOML file PLAN on Dask
    distributed: this machine's cores, or a cluster given by --scheduler or
    --scheduler-file whose workers see the same file system.  A ledger beside PLAN keeps
    what was done: a rerun skips MOUSes done with the same inputs.  Exit code 1 if any
    MOUS failed (each with its reason), 2 for a bad PLAN (nothing started)."""
    from almaqa2.batch import ledger, plan, runner

    if init_dir is not None:
        render.batch_init(_init(plan_file, init_dir), as_json)
        return
    if scheduler and scheduler_file:
        raise click.UsageError("give --scheduler or --scheduler-file, not both")
    chosen = _steps(steps)
    batch = plan.load(plan_file)
    plan.check_steps(batch, chosen)
    plan.check_places(batch, chosen)
    if dry_run:
        render.batch_plan(batch, chosen, ledger.read(batch.ledger), as_json)
        return
    where = runner.Where(scheduler, scheduler_file, workers)
    with progress_bar("MOUSes", counting=True) as progress:
        outcome = runner.run(
            batch, chosen, where, retries, force, lambda text: err.print(text, markup=False),
            progress,
        )  # fmt: skip
    render.batch_outcome(outcome, as_json)
    if not outcome.ok:
        raise click.exceptions.Exit(1)


def _steps(text: str) -> tuple[str, ...]:
    from almaqa2.batch.plan import STEPS

    asked = [s.strip() for s in text.split(",") if s.strip()]
    if not asked or any(s not in STEPS for s in asked) or len(set(asked)) != len(asked):
        raise InputError(
            f"'{text}' is not a list of steps", fix="write e.g. package,tarsplit,verify"
        )
    return tuple(s for s in STEPS if s in asked)


def _init(plan_file: Path, top: Path) -> tuple[Path, int]:
    """Write the PLAN of what ``top`` holds; returns it and how many it lists."""
    from almaqa2.batch.plan import discover, init_text
    from almaqa2.errors import existing_dir

    top = existing_dir(top, "the directory to look in", "give the directory of the reductions")
    found = discover(top)
    if not found:
        raise InputError("no reduction or pipeline run found", top, fix="give their directory")
    try:
        write_new(plan_file, init_text(found, top))
    except FileExistsError:  # never over an existing file or link
        raise DestinationError(
            "the PLAN exists already", plan_file, fix="choose a new name"
        ) from None
    return plan_file, len(found)
