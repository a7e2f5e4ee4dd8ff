"""The packaging and transfer commands: package, stage, inspect, tarsplit, verify, untar,
deliver, readme-template."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table

from almaqa2.cli.app import cli, err, out, progress_bar
from almaqa2.package.rules import MODES, STYLES
from almaqa2.sizes import human_size

if TYPE_CHECKING:
    from almaqa2.package.packager import Result
    from almaqa2.package.plan import Plan
    from almaqa2.transfer.verify import Report


@cli.command("package")
@click.argument("origpath", type=click.Path(path_type=Path))
@click.argument("packpath", type=click.Path(path_type=Path))
@click.option(
    "--readme",
    type=click.Path(path_type=Path),
    required=True,
    help="README header file (see 'qa2 readme-template').",
)
@click.option("--mode", default="fake", show_default=True, help="|".join(MODES))
@click.option("--append", default="", help="'' (replace), group or member.")
@click.option(
    "--style",
    default="",
    help="Packaging style: "
    + ", ".join(STYLES)
    + ". From cycle5 on files are named as the archive names them: member.<MOUS>.<name>,"
    " an EB's files under the EB's name, <EB>.calibration.tgz bundles.",
)
@click.option(
    "--pi-script",
    type=click.Path(path_type=Path),
    help="scriptForPI.py to deliver (or its directory); delivered as"
    " member.<MOUS>.scriptForPI.py from cycle 5 on, scriptForPI.py before.",
)
@click.option(
    "--noms/--no-noms", default=False, help="Legacy, without --style: leave MeasurementSets out."
)
@click.option("--sg", help="Science goal OUS UID.")
@click.option("--gous", help="Group OUS UID.")
@click.option("--mous", help="Member OUS UID.")
@click.option("--sb-name", help="SB name (names the ticket files).")
@click.option("--strict", is_flag=True, help="Fail on unclassified files.")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def package_cmd(dry_run: bool, as_json: bool, **options: Any) -> None:
    """Package the reduction ORIGPATH into PACKPATH (named after the project code)."""
    from almaqa2.package.packager import Request, package, prepare

    request = Request(**options)
    if dry_run:
        plan = prepare(request)
        if as_json:
            out.print_json(json.dumps(plan.as_dict()))
        else:
            _show_plan(plan)
        return
    with progress_bar() as progress:
        result = package(request, progress)
    if as_json:
        out.print_json(json.dumps(_result_dict(result)))
    else:
        _show_result(result)


@cli.command("stage")
@click.argument("pipeline_root", type=click.Path(path_type=Path))
@click.argument("staged_root", type=click.Path(path_type=Path))
@click.option("--mode", default="copy", show_default=True, help="copy|hard|fake")
@click.option(
    "--pi-script",
    type=click.Path(path_type=Path),
    help="scriptForPI.py to stage (or its directory); default: the pipeline's.",
)
@click.option(
    "--pipe-readme",
    type=click.Path(path_type=Path),
    help="README header for the staged package; default: the pipeline's README.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stage_cmd(
    pipeline_root: Path, staged_root: Path, mode: str, pi_script: Path | None,
    pipe_readme: Path | None, dry_run: bool, as_json: bool,
) -> None:  # fmt: skip
    """Stage the pipeline run PIPELINE_ROOT as a delivery-style package STAGED_ROOT."""
    from almaqa2.package.stage import prepare, stage

    if dry_run:
        plan = prepare(pipeline_root, staged_root, mode, pi_script)
        if as_json:
            out.print_json(json.dumps(plan.as_dict()))
        else:
            _show_plan(plan)
        return

    with progress_bar("staging") as progress:
        result = stage(pipeline_root, staged_root, mode, pi_script, pipe_readme, progress)
    if as_json:
        out.print_json(json.dumps(_result_dict(result)))
    else:
        _show_result(result)


@cli.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect_cmd(paths: tuple[Path, ...], as_json: bool) -> None:
    """Show what a package directory or a set of tar chunks holds (no unpacking)."""
    from almaqa2.transfer.inspection import inspect

    inventory = inspect(paths)
    if as_json:
        out.print_json(json.dumps(inventory.as_dict()))
        return
    for project in inventory.as_dict()["projects"]:
        _show_project(project, inventory.source, inventory.doubled)


def _show_project(project: dict[str, Any], source: str, doubled: bool) -> None:
    note = " (a doubled project directory, read as one)" if doubled else ""
    out.print(
        f"project {project['project']}: {human_size(project['size'])} in {source}{note}",
        markup=False,
    )
    for sg in project["science_goals"]:
        out.print(f"  {sg['name']}", markup=False)
        for group in sg["groups"]:
            out.print(f"    {group['name']}", markup=False)
            for m in group["members"]:
                out.print(
                    f"      {m['name']}: {m['calibration']} calibration, {len(m['ebs'])} EB(s),"
                    f" {m['files']} files, {human_size(m['size'])}",
                    markup=False,
                )
                for eb in m["ebs"]:
                    out.print(f"        EB {eb}", markup=False)
                if m["script_for_pi"]:
                    creates = ", ".join(m["script_for_pi_creates"]) or "nothing listed"
                    out.print(f"        {m['script_for_pi']} creates: {creates}", markup=False)
                else:
                    out.print("        no scriptForPI in script/", markup=False)
                sizes = ", ".join(f"{k} {human_size(v)}" for k, v in m["sizes"].items())
                out.print(f"        {sizes}", markup=False)


@cli.command("tarsplit")
@click.argument("packpath", type=click.Path(path_type=Path))
@click.option("-n", "date", help="Date for the chunk names (YYYY-MM-DD) when no MOUS UID.")
@click.option("--max-size", default="10G", show_default=True, help="Largest chunk (10G, 500M).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Directory for the chunks.")
@click.option("--auxiliary", is_flag=True, help="All but product/ in one auxiliary tar.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tarsplit_cmd(
    packpath: Path, date: str | None, max_size: str, out_dir: Path | None, auxiliary: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Split PACKPATH into checksummed tar chunks named as the ALMA archive names them."""
    from almaqa2.transfer import tarsplit

    with progress_bar("splitting") as progress:
        split = tarsplit.tarsplit(packpath, out_dir, max_size, date, auxiliary, progress)
    chunks: list[dict[str, Any]] = [
        {"name": c.name, "size": c.size, "md5": split.digests[c.name], "entries": len(c.entries)}
        for c in split.chunks
    ]
    if as_json:
        out.print_json(json.dumps({"chunks": chunks, "md5sums": str(split.md5sums)}))
        return
    for chunk in chunks:
        out.print(
            f"{chunk['name']}  {human_size(chunk['size'])}  {chunk['entries']} entries",
            markup=False,
        )
    out.print(f"checksums: {split.md5sums}", markup=False)


@cli.command("verify")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def verify_cmd(ctx: click.Context, paths: tuple[Path, ...], as_json: bool) -> None:
    """Check a package against its manifest, or chunks against their md5s and manifest.

    PATHS: one package directory, or chunk files, or the directory holding the chunks.
    A pipeline package is also checked for the PI's restore: every file its pipeline
    manifest names delivered under that name, and what the scriptForPI looks for in
    script/ (restore: lines).  Exit code 0 when everything matches, 1 when anything is
    missing, extra, corrupt, unsafe or not restorable.
    """
    from almaqa2.transfer.verify import verify

    with progress_bar("verifying") as progress:
        report = verify(paths, progress)
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        _show_report(report)
    ctx.exit(0 if report.ok else 1)


@cli.command("untar")
@click.argument("chunks", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Where to extract."
)
@click.pass_context
def untar_cmd(ctx: click.Context, chunks: tuple[Path, ...], out_dir: Path) -> None:
    """Verify a package's CHUNKS (files or their directory) and extract them safely.

    The package appears in OUT only if every chunk and every file matches its md5.
    """
    from almaqa2.transfer.untar import untar
    from almaqa2.transfer.verify import VerificationError

    try:
        with progress_bar("extracting") as progress:
            done = untar(chunks, out_dir, progress)
    except VerificationError as exc:
        _show_report(exc.report)
        err.print("nothing was extracted", highlight=False)
        ctx.exit(1)
    out.print(
        f"extracted, {done.report.checked} files and chunks checked: {done.package}",
        markup=False,
        highlight=False,
    )


def _show_report(report: Report) -> None:
    if report.ok:
        out.print(f"[green]OK[/green]: {report.checked} files and chunks match their md5s")
        return
    for problem in report.problems:  # one line each, whole paths: for reading and for grep
        out.print(str(problem), markup=False, highlight=False)
    out.print(f"[red]FAILED[/red]: {len(report.problems)} problem(s) in {report.checked} checked")


@cli.command("deliver")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--web-root",
    type=click.Path(path_type=Path),
    required=True,
    help="The directory the web server serves.",
)
@click.option("--max-size", default="10G", show_default=True, help="Largest chunk, for a package.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def deliver_cmd(paths: tuple[Path, ...], web_root: Path, max_size: str, as_json: bool) -> None:
    """Publish chunks (files or their directory), or a package split on the way, into a new
    hard-to-guess directory of WEB_ROOT with an index.html; prints the directory."""
    from almaqa2.transfer.deliver import INDEX, deliver

    with progress_bar("publishing") as progress:
        done = deliver(paths, web_root, max_size, progress)
    if as_json:
        files = [{"name": n, "size": size, "md5": md5} for n, size, md5 in done.files]
        out.print_json(
            json.dumps({"folder": str(done.folder), "files": files, "md5": list(done.lists)})
        )
        return
    for name, size, md5 in done.files:
        out.print(f"{name}  {human_size(size)}  {md5}", markup=False, highlight=False)
    out.print(f"published: {done.folder / INDEX}", markup=False, highlight=False)


@cli.command("readme-template")
def readme_template() -> None:
    """Print a README header template to fill in and give with --readme."""
    from almaqa2.package.readme import TEMPLATE

    click.echo(TEMPLATE, nl=False)


def _summary(result: Result) -> Table:
    plan = result.plan
    counts: Counter[str] = Counter()
    volume: Counter[str] = Counter()
    for path, size in result.sizes.items():
        counts[path.split("/", 1)[0]] += 1
        volume[path.split("/", 1)[0]] += size
    table = Table(title=f"{plan.project}/{plan.member_path}", show_edge=False)
    for column in ("directory", "entries", "size"):
        table.add_column(column, justify="left" if column == "directory" else "right")
    for name in sorted(counts):
        table.add_row(name, str(counts[name]), human_size(volume[name]))
    return table


def _show_plan(plan: Plan) -> None:
    table = Table(title=f"plan: {plan.project}/{plan.member_path} ({plan.mode})", show_edge=False)
    table.add_column("from")
    table.add_column("to")
    for p in plan.placements:
        dest = p.dest.as_posix() + ("/" if p.source.members else "")
        table.add_row(
            str(p.source.rel), f"{p.bundle.path} ({p.bundle.inside})" if p.bundle else dest
        )
    out.print(table)
    for skip in plan.skipped:
        out.print(f"[dim]not packaged: {escape(f'{skip.source.rel} ({skip.why})')}[/dim]")
    for entry in plan.unclassified:
        out.print(f"[yellow]unclassified: {escape(str(entry.rel))}[/yellow]")
    out.print("dry run: nothing was written")


def _show_result(result: Result) -> None:
    out.print(_summary(result))
    out.print(f"package: {result.packpath}", markup=False)
    for path in result.tickets:
        out.print(f"ticket:  {path}", markup=False)
    if result.manifest:
        out.print(f"manifest: {result.manifest}", markup=False)
    if result.plan.unclassified:
        out.print(f"[yellow]{len(result.plan.unclassified)} unclassified file(s) left out[/yellow]")


def _result_dict(result: Result) -> dict[str, Any]:
    return {
        **result.plan.as_dict(),
        "packpath": str(result.packpath),
        "member_dir": str(result.member_dir),
        "tickets": [str(p) for p in result.tickets],
        "manifest": str(result.manifest) if result.manifest else None,
    }
