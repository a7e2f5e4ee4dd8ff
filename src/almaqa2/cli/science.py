"""The PI's commands after the restore: ``split`` (seed 003's science split)."""

from __future__ import annotations

from pathlib import Path

import click

from almaqa2.cli import render
from almaqa2.cli.app import cli, progress_bar


@cli.command("split", short_help="Split out the science spws and targets, as CASA's split.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--spw",
    default="science",
    show_default=True,
    help="science: the spws a target was observed in, of more than 4 channels; or ids,"
    " as 1,3 or 1~3.",
)
@click.option(
    "--intent",
    default="*TARGET*",
    show_default=True,
    help="The .source MS's rows: states whose OBS_MODE matches this pattern.",
)
@click.option(
    "--field", "fields", help="The .source MS's fields: names (patterns) or ids, comma-separated."
)
@click.option(
    "--datacolumn",
    type=click.Choice(["corrected", "data"]),
    default="corrected",
    show_default=True,
    help="The column delivered as DATA (corrected: SIGMA set to 1/sqrt(WEIGHT), as CASA).",
)
@click.option("--no-source", is_flag=True, help="Make only <vis>.split.cal.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Write into this directory (default: beside each MS, never in working/).",
)
@click.option("--dry-run", is_flag=True, help="Print what would be made; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def split_cmd(
    paths: tuple[Path, ...], spw: str, intent: str, fields: str | None, datacolumn: str,
    no_source: bool, out: Path | None, dry_run: bool, as_json: bool,
) -> None:  # fmt: skip
    """Split each calibrated MS in PATHS (MSes, or directories such as calibrated/) into
    <vis>.split.cal (science spws, calibrated data as DATA) and <vis>.split.cal.source
    (its targets), each with its flags saved as 'original_flags', as seed 003's CASA
    steps make them.  Needs python-casacore."""
    from almaqa2.data import split

    request = split.Request(paths, spw, intent, fields, datacolumn, not no_source, out)
    planned = split.plan(request)
    if dry_run:
        render.science_plan(planned, as_json)
        return
    with progress_bar("splitting", counting=True) as progress:
        made = split.split(request, progress, planned)
    render.science_split(planned, made, as_json)
