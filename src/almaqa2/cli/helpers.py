"""The reducer helpers' commands (SPEC §9): ``start``, ``clear``, ``lock``, ``fluxscale``,
``fluxequal``, ``allfluxes``, ``check``, ``download``; each calls its module in ``helpers/``.

They join the ``qa2`` group of ``cli``, with its conventions: parse, call, show; no logic.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from almaqa2.cli.app import cli, out, progress_bar
from almaqa2.sizes import human_size


@cli.command("lock")
@click.argument("action", type=click.Choice(["on", "off", "status"]), default="status")
@click.option("--name", default="analysisUtils", show_default=True, help="Which lock.")
@click.option("--force", is_flag=True, help="off: break a lock someone else holds.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def lock_cmd(action: str, name: str, force: bool, as_json: bool) -> None:
    """Take (on), release (off) or show (status) a lock shared through $QA2_LOCK_DIR."""
    from almaqa2.helpers import lock

    directory = lock.lock_dir()
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
    if as_json:
        out.print_json(
            json.dumps({"action": action, "name": name, "holder": holder and holder.as_dict()})
        )
    else:
        out.print(said, markup=False)


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.1f} %" if math.isfinite(fraction) else "n/a"


@cli.command("fluxscale")
@click.argument("path", type=click.Path(path_type=Path), default=".")
@click.option("--plot", "png", type=click.Path(path_type=Path), help="Write a PNG plot.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def fluxscale_cmd(path: Path, png: Path | None, as_json: bool) -> None:
    """Tabulate the fluxscale results of an EB or of every EB of an SB (PATH, default .)."""
    from almaqa2.helpers import fluxscale

    fluxes = fluxscale.read(path)
    if png is not None:
        fluxscale.plot(fluxes, png)
    if as_json:
        out.print_json(json.dumps(fluxes.as_dict()))
        return
    for source in sorted({m.source for m in fluxes.measurements}):
        table = Table(title=source, show_edge=False)
        for column in ("spw", "GHz", *fluxes.ebs, "spread"):
            table.add_column(column, justify="right")
        for row in fluxes.by_spw(source):
            cells = [
                f"{m.flux:.4g} ± {m.error:.2g}" if (m := row.by_eb.get(eb)) else "-"
                for eb in fluxes.ebs
            ]
            table.add_row(str(row.spw), f"{row.ghz:.6f}", *cells, _percent(row.spread))
        out.print(table)
    for fit in fluxes.fits:
        spidx = f", spectral index {fit.spidx:.3g} ± {fit.spidx_error:.2g}" if fit.spidx else ""
        out.print(
            f"{fit.eb}: {fit.source} {fit.flux:.4g} ± {fit.error:.2g} Jy at {fit.freq_ghz:g} GHz"
            + spidx,
            markup=False,
        )
    if png is not None:
        out.print(f"plot: {png}", markup=False)


@cli.command("fluxequal")
@click.argument("calibrated", type=click.Path(path_type=Path), default=".")
@click.option("--dry-run", is_flag=True, help="Print the links; make none.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def fluxequal_cmd(calibrated: Path, dry_run: bool, as_json: bool) -> None:
    """Link each EB's *.ms.split.cal and fluxscale file into CALIBRATED (default .)."""
    from almaqa2.helpers import fluxequal

    links = fluxequal.plan(calibrated)
    if not dry_run:
        fluxequal.apply(links)
    state = "would be made" if dry_run else "made"
    rows = [
        {
            "link": link.name.name,
            "target": link.relative,
            "state": "already there" if link.there else state,
        }
        for link in links
    ]
    if as_json:
        out.print_json(json.dumps({"dry_run": dry_run, "links": rows}))
        return
    for row in rows:
        out.print(f"{row['link']} -> {row['target']}  ({row['state']})", markup=False)


@cli.command("clear")
@click.argument("directory", type=click.Path(path_type=Path), default=".")
@click.option("--yes", is_flag=True, help="Do not ask.")
@click.option("--dry-run", is_flag=True, help="List what would go; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def clear_cmd(directory: Path, yes: bool, dry_run: bool, as_json: bool) -> None:
    """Delete all but the ASDM and scripts of an EB directory, or all but the inputs of
    calibrated/ (DIRECTORY, default .)."""
    from almaqa2.helpers import clear

    clearing = clear.plan(directory)
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "directory": str(clearing.directory),
                    "kind": clearing.kind,
                    "keep": [_below(p, clearing.directory) for p in clearing.keep],
                    "delete": [p.name for p in clearing.delete],
                    "dry_run": dry_run,
                }
            )
        )
    else:
        out.print("Keeping the following files:", markup=False)
        for path in clearing.keep:
            out.print(f" - {_below(path, clearing.directory)}", markup=False)
        if dry_run:
            for path in clearing.delete:
                out.print(f"would delete: {path.name}", markup=False)
    if dry_run or not clearing.delete:
        return
    if not yes and not click.confirm(f"Delete the {len(clearing.delete)} other entries?"):
        out.print("nothing deleted")
        return
    clear.apply(clearing)
    if not as_json:
        out.print(f"deleted {len(clearing.delete)} entries", markup=False)


def _below(path: Path, directory: Path) -> str:
    return path.relative_to(directory).as_posix()


@cli.command("allfluxes")
@click.argument("calibrated", type=click.Path(path_type=Path), default=".")
@click.option("--recompute", is_flag=True, help="Make allFluxes.txt again (the old one is kept).")
@click.option("--threshold", default=0.1, show_default=True, help="Flag beyond this fraction.")
@click.option("--dry-run", is_flag=True, help="Show what would be written; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def allfluxes_cmd(
    calibrated: Path, recompute: bool, threshold: float, dry_run: bool, as_json: bool
) -> None:
    """Make allFluxes.txt in CALIBRATED from the EBs' fluxscale results, or check the one
    there against their fitted spectra."""
    from almaqa2.helpers import allfluxes

    done = allfluxes.allfluxes(calibrated, recompute, threshold, dry_run)
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "file": str(done.path),
                    "written": done.written,
                    "rows": [row.as_dict() for row in done.rows],
                    "flags": [{**f.row.as_dict(), "fitted": f.fitted, "deviation": f.deviation}
                              for f in done.flags],
                }
            )
        )  # fmt: skip
        return
    out.print(allfluxes.write(done.rows), markup=False, end="")
    for flag in done.flags:
        out.print(f"[yellow]flagged:[/yellow] {escape(str(flag))}")
    out.print(f"{'written' if done.written else 'read'}: {done.path}", markup=False)


@cli.command("check")
@click.argument("origpath", type=click.Path(path_type=Path), default=".")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check_cmd(origpath: Path, as_json: bool) -> None:
    """Seed 004's final checklist for the reduction ORIGPATH; exit 1 if an item fails."""
    from almaqa2.helpers.check import check

    results = check(origpath)
    failed = [r for r in results if not r.ok]
    if as_json:
        out.print_json(json.dumps({"ok": not failed, "items": [r.as_dict() for r in results]}))
    else:
        table = Table(title=f"final checklist: {origpath}", show_edge=False)
        for column in ("item", "where", "", "detail"):
            table.add_column(column)
        for r in results:
            table.add_row(r.item, r.where, "pass" if r.ok else "[red]FAIL[/red]", escape(r.detail))
        out.print(table)
    if failed:
        raise click.exceptions.Exit(1)


@cli.command("download")
@click.argument("url")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=".", help="Where to.")
@click.option("--dry-run", is_flag=True, help="List what would be fetched; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def download_cmd(url: str, out_dir: Path, dry_run: bool, as_json: bool) -> None:
    """Download the ASDM tars and md5 list the page URL links to; resume, check, unpack."""
    from almaqa2.helpers.download import download, listing

    if dry_run:
        tars, md5_url, _ = listing(url)
        names = [u.rsplit("/", 1)[-1] for u in tars]
        if as_json:
            out.print_json(json.dumps({"dry_run": True, "tars": names, "md5s": md5_url}))
            return
        for name in names:
            part = out_dir / f"{name}.part"
            state = f"resume at {human_size(part.stat().st_size)}" if part.exists() else "fetch"
            out.print(f"would {state}: {name}", markup=False)
        return

    with progress_bar("downloading") as progress:
        result = download(url, out_dir, progress)
    if as_json:
        rows = [vars(f) for f in result.fetched]
        out.print_json(
            json.dumps({"out": str(result.out), "files": rows, "extracted": result.extracted})
        )
        return
    for f in result.fetched:
        resumed = f" (resumed at {human_size(f.resumed_from)})" if f.resumed_from else ""
        out.print(f"{f.name}: md5 OK{resumed}", markup=False)
    for name in result.extracted:
        out.print(f"unpacked: {result.out / name}", markup=False)


@cli.command("start")
@click.argument("sb", required=False)
@click.option("--layout", default="allegro", show_default=True, help="allegro or nrao.")
@click.option("--archive", type=click.Path(path_type=Path), help="Holds <SB>/uid___* ASDMs.")
@click.option("--into", type=click.Path(path_type=Path), default=".", help="Where to set up.")
@click.option("--project", help="Project code (Allegro; default: from the path).")
@click.option("--style", default="cycle4-nopipe", show_default=True, help="For run_packaging.py.")
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
            out.print(f"SBs in {archive}: " + (", ".join(found) or "none"), markup=False)
            return
        sb = found[0]
    area = start.start(sb, into, layout, archive, project, style, dry_run)
    if as_json:
        out.print_json(json.dumps({**area.as_dict(), "dry_run": dry_run}))
        return
    said = "would set up" if dry_run else "set up"
    out.print(f"{said} {area.path} ({area.layout}, {len(area.ebs)} EB(s))", markup=False)
    for rel in area.tree:
        out.print(f"  {rel}", markup=False)
