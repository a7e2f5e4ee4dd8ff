"""The reducer helpers' commands (SPEC §9): ``start``, ``clear``, ``lock``, ``fluxscale``,
``fluxequal``, ``allfluxes``, ``check``, ``download``; each calls its module in ``helpers/``.

They join the ``qa2`` group of ``cli``, with its conventions: parse, call, show; no logic.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from almaqa2.cli import render
from almaqa2.cli.app import cli, fraction, progress_bar
from almaqa2.package.rules import AREA_LAYOUTS as LAYOUTS
from almaqa2.package.rules import STYLES


@cli.command("lock", short_help="Take, release or show a lock.")
@click.argument("action", type=click.Choice(["on", "off", "status"]), default="status")
@click.option("--name", default="analysisUtils", show_default=True, help="Which lock.")
@click.option("--force", is_flag=True, help="off: break a lock someone else holds.")
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path), envvar="QA2_LOCK_DIR",
    help="The directory every reducer shares the locks in (also $QA2_LOCK_DIR).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def lock_cmd(action: str, name: str, force: bool, directory: Path | None, as_json: bool) -> None:
    """Take (on), release (off) or show (status) a lock shared in a directory."""
    from almaqa2.helpers import lock

    directory = lock.lock_dir(directory)
    holder: lock.Holder | None
    if action == "on":
        holder = lock.take(directory, name)
        said = f"locked {name} ({holder})"
    elif action == "off":
        holder = lock.release(directory, name, force)
        said = f"released {name}, held by {holder}" if holder else f"{name} was not locked"
    else:
        holder = lock.status(directory, name)
        said = f"{name} is locked by {holder}" if holder else f"{name} is not locked"
    render.lock(action, name, holder, said, as_json)


@cli.command("fluxscale", short_help="Tabulate and plot the fluxscale results.")
@click.argument("path", type=click.Path(path_type=Path), default=".")
@click.option("--plot", "png", type=click.Path(path_type=Path), help="Write a PNG plot.")
@click.option(
    "--threshold", default=0.1, callback=fraction, show_default=True,
    help="Flag flux densities further than this fraction from the median of their spw's EBs"
    " (an EB alone: from its fitted spectrum).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def fluxscale_cmd(path: Path, png: Path | None, threshold: float, as_json: bool) -> None:
    """Tabulate the fluxscale results of an EB or of every EB of an SB (PATH, default .);
    exit 1 if any flux density is flagged."""
    from almaqa2.helpers import fluxscale

    fluxes = fluxscale.read(path)
    if png is not None:
        fluxscale.plot(fluxes, png, threshold, title=path.resolve().name)
    render.fluxes(fluxes, png, threshold, as_json)
    if fluxes.outliers(threshold):
        raise click.exceptions.Exit(1)


@cli.command("fluxequal", short_help="Gather each EB's calibrated MS and fluxscale file.")
@click.argument("calibrated", type=click.Path(path_type=Path), default=".")
@click.option("--dry-run", is_flag=True, help="Print the links; make none.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def fluxequal_cmd(calibrated: Path, dry_run: bool, as_json: bool) -> None:
    """Link each EB's *.ms.split.cal and fluxscale file into CALIBRATED (default .)."""
    from almaqa2.helpers import fluxequal

    links = fluxequal.plan(calibrated)
    if not dry_run:
        fluxequal.apply(links)
    render.links(links, dry_run, as_json)


@cli.command("clear", short_help="Delete all but the ASDM and scripts of an EB.")
@click.argument("directory", type=click.Path(path_type=Path), default=".")
@click.option("--yes", is_flag=True, help="Do not ask.")
@click.option("--dry-run", is_flag=True, help="List what would go; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def clear_cmd(directory: Path, yes: bool, dry_run: bool, as_json: bool) -> None:
    """Delete all but the ASDM and scripts of an EB directory, or all but the inputs of
    calibrated/ (DIRECTORY, default .)."""
    from almaqa2.helpers import clear

    clearing = clear.plan(directory)
    render.clearing(clearing, dry_run, as_json)
    if dry_run or not clearing.delete:
        return
    if not yes and sys.stdin is None:  # closed: no answer comes, as at the end of input
        raise click.Abort()
    if not yes and not click.confirm(f"Delete the {len(clearing.delete)} other entries?"):
        render.nothing_deleted()
        return
    clear.apply(clearing)
    render.cleared(len(clearing.delete), as_json)


@cli.command("allfluxes", short_help="Make or check allFluxes.txt of an SB.")
@click.argument("calibrated", type=click.Path(path_type=Path), default=".")
@click.option("--recompute", is_flag=True, help="Make allFluxes.txt again (the old one is kept).")
@click.option(
    "--threshold", default=0.1, callback=fraction, show_default=True,
    help="Flag beyond this fraction (of the fitted spectrum).",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Show what would be written; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def allfluxes_cmd(
    calibrated: Path, recompute: bool, threshold: float, dry_run: bool, as_json: bool
) -> None:
    """Make allFluxes.txt in CALIBRATED from the EBs' fluxscale results, or check the one
    there against their fitted spectra; exit 1 if a row is flagged."""
    from almaqa2.helpers import allfluxes

    done = allfluxes.allfluxes(calibrated, recompute, threshold, dry_run)
    render.allfluxes(done, allfluxes.write(done.rows), as_json)
    if done.flags:
        raise click.exceptions.Exit(1)


@cli.command("check", short_help="Run the final checklist on a reduction.")
@click.argument("origpath", type=click.Path(path_type=Path), default=".")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check_cmd(origpath: Path, as_json: bool) -> None:
    """The final checklist of the reduction ORIGPATH (NRAO's or Allegro's, by its layout);
    exit 1 if an item fails."""
    from almaqa2.helpers.check import check

    applied, results = check(origpath)
    render.checklist(origpath, applied, results, as_json)
    if not all(r.ok for r in results):
        raise click.exceptions.Exit(1)


@cli.command("download", short_help="Download the ASDMs a page links, md5-checked.")
@click.argument("url")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default=".", show_default=True,
    help="Where to (its last level is made if missing).",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="List what would be fetched; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def download_cmd(url: str, out_dir: Path, dry_run: bool, as_json: bool) -> None:
    """Download the ASDM tars and md5 list the page URL links to; resume, check, unpack."""
    from almaqa2.helpers.download import download, listing

    if dry_run:
        offered = listing(url)
        render.to_download([name for name, _ in offered.tars], offered.md5_url, out_dir, as_json)
        return
    with progress_bar("downloading") as progress:
        result = download(url, out_dir, progress)
    render.downloaded(result, as_json)


@cli.command("start", short_help="Set up the reduction area of an SB.")
@click.argument("sb", required=False)
@click.option(
    "--layout", type=click.Choice(LAYOUTS), default="allegro", show_default=True,
    help="The regional centre's layout of the area.",
)  # fmt: skip
@click.option("--archive", type=click.Path(path_type=Path), help="Holds <SB>/uid___* ASDMs.")
@click.option(
    "--into", type=click.Path(path_type=Path), default=".", show_default=True,
    help="Where to set up (its last level is made if missing).",
)  # fmt: skip
@click.option("--project", help="Project code (Allegro; default: from the path).")
@click.option(
    "--style", type=click.Choice(STYLES), metavar="STYLE", default="cycle4-nopipe",
    show_default=True, help="The style run_packaging.py packages with.",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Show the tree; make nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def start_cmd(
    sb: str | None, layout: str, archive: Path | None, into: Path, project: str | None,
    style: str, dry_run: bool, as_json: bool,
) -> None:  # fmt: skip
    """Set up the reduction area of SB (NRAO: the MOUS UID); without SB, list the SBs of
    --archive or set up the only one."""
    from almaqa2.helpers import start

    if sb is None:
        if archive is None:
            raise click.UsageError("give the SB name, or --archive to choose from")
        found = start.sbs_in(archive)
        if len(found) != 1:
            render.sbs(archive, found, as_json)
            return
        sb = found[0]
    area = start.start(sb, into, layout, archive, project, style, dry_run)
    render.area(area, dry_run, as_json)
