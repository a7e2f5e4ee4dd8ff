"""The packaging and transfer commands: package, stage, inspect, tarsplit, verify, untar,
deliver, readme-template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from almaqa2.cli import render
from almaqa2.cli.app import cli, progress_bar
from almaqa2.package.naming import APPENDS
from almaqa2.package.rules import MODES, STAGE_MODES, STYLES


@cli.command("package", short_help="Package a reduction for review and delivery.")
@click.argument("origpath", type=click.Path(path_type=Path))
@click.argument("packpath", type=click.Path(path_type=Path))
@click.option(
    "--readme",
    type=click.Path(path_type=Path),
    required=True,
    help="README header file (see 'qa2 readme-template').",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="fake",
    show_default=True,
    help="fake: empty files, a dummy ticket; ticket: empty files, the real ticket; copy;"
    " hard: hard links.",
)
@click.option(
    "--append",
    type=click.Choice(APPENDS),
    default="",
    help="'' (a new package, replacing one there), group or member.",
)
@click.option(
    "--style",
    type=click.Choice(["", *STYLES]),
    metavar="STYLE",
    default="",
    help="Packaging style: "
    + ", ".join(STYLES)
    + " ('': from the reduction, as the old call). From cycle5 on files are named as the"
    " archive names them: member.<MOUS>.<name>, an EB's files under the EB's name,"
    " <EB>.calibration.tgz bundles.",
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
@click.option(
    "--jira",
    type=click.Path(path_type=Path),
    help="Also fill this directory with what the review ticket needs attached: the ticket"
    " zip, the review page and the checklists.",
)
@click.option(
    "--allow-blank-header",
    is_flag=True,
    help="Package in copy or hard mode though the README header leaves PI name, project"
    " title, configuration or proposed rms blank.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def package_cmd(dry_run: bool, as_json: bool, **options: Any) -> None:
    """Package the reduction ORIGPATH into PACKPATH (named after the project code)."""
    from almaqa2.package.packager import Request, package, prepare

    request = Request(**options)
    if dry_run:
        render.plan(prepare(request), as_json)
        return
    with progress_bar() as progress:
        result = package(request, progress)
    render.packaged(result, as_json)


@cli.command("stage", short_help="Stage a pipeline run as a delivery-style package.")
@click.argument("pipeline_root", type=click.Path(path_type=Path))
@click.argument("staged_root", type=click.Path(path_type=Path))
@click.option(
    "--mode", type=click.Choice(STAGE_MODES), default="copy", show_default=True,
    help="copy, hard links, or fake (empty files).",
)  # fmt: skip
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
        render.plan(prepare(pipeline_root, staged_root, mode, pi_script), as_json)
        return
    with progress_bar("staging") as progress:
        result = stage(pipeline_root, staged_root, mode, pi_script, pipe_readme, progress)
    render.packaged(result, as_json)


@cli.command("inspect", short_help="Show what a package, its chunks or a ticket hold.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect_cmd(paths: tuple[Path, ...], as_json: bool) -> None:
    """Show what a package directory or a set of tar chunks holds (no unpacking)."""
    from almaqa2.transfer.inspection import TICKET_NAME, inspect, ticket

    if len(paths) == 1 and TICKET_NAME.fullmatch(paths[0].name):
        render.ticket(ticket(paths[0]), as_json)
        return
    render.inventory(inspect(paths), as_json)


@cli.command("tarsplit", short_help="Split a package into checksummed tar chunks.")
@click.argument("packpath", type=click.Path(path_type=Path))
@click.option(
    "--date", "-n", "date",
    help="Date for the chunk names (YYYY-MM-DD) instead of the MOUS UID or today's date;"
    " -n is the old tarsplit.py's name for it.",
)  # fmt: skip
@click.option(
    "--max-size",
    default="10G",
    show_default=True,
    help="Largest chunk: 10G or 10GiB (binary), 10GB (decimal), 500M.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Directory for the chunks (default: beside the package; made if missing).",
)
@click.option("--auxiliary", is_flag=True, help="All but product/ in one auxiliary tar.")
@click.option("--dry-run", is_flag=True, help="Show what would be written; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tarsplit_cmd(
    packpath: Path, date: str | None, max_size: str, out_dir: Path | None, auxiliary: bool,
    dry_run: bool, as_json: bool,
) -> None:  # fmt: skip
    """Split PACKPATH into checksummed tar chunks named as the ALMA archive names them."""
    from almaqa2.transfer import tarsplit

    with progress_bar("splitting") as progress:
        split = tarsplit.tarsplit(packpath, out_dir, max_size, date, auxiliary, progress, dry_run)
    render.split(split, as_json, dry_run, max_size)


@cli.command("verify", short_help="Check a package or its chunks against their md5s.")
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
    render.report(report, as_json)
    ctx.exit(0 if report.ok else 1)


@cli.command("untar", short_help="Verify chunks, then extract the package they hold.")
@click.argument("chunks", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Where to extract (made if missing).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be written; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def untar_cmd(
    ctx: click.Context, chunks: tuple[Path, ...], out_dir: Path, dry_run: bool, as_json: bool
) -> None:
    """Verify a package's CHUNKS (files or their directory) and extract them safely.

    The package appears in OUT only if every chunk and every file matches its md5.
    """
    from almaqa2.transfer.untar import untar
    from almaqa2.transfer.verify import VerificationError

    try:
        with progress_bar("extracting") as progress:
            done = untar(chunks, out_dir, progress, dry_run)
    except VerificationError as exc:
        render.refused_untar(exc.report, as_json)
        ctx.exit(1)
    render.untarred(done, as_json, dry_run)


@cli.command("deliver", short_help="Publish chunks on a web page for the PI.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--web-root",
    type=click.Path(path_type=Path),
    required=True,
    help="The directory the web server serves (made if missing).",
)
@click.option("--max-size", default="10G", show_default=True, help="Largest chunk, for a package.")
@click.option("--base-url", help="The address WEB_ROOT is served at: prints the link to send.")
@click.option("--expires", "expires_days", type=click.IntRange(min=1, max=3650), default=30,
              show_default=True, help="Days the page says the files stay available.")  # fmt: skip
@click.option("--contact", help="Whom the PI asks (shown on the page).")
@click.option("--list", "listing", is_flag=True, help="List the deliveries under WEB_ROOT.")
@click.option("--remove", metavar="FOLDER", help="Remove this delivery from WEB_ROOT.")
@click.option("--dry-run", is_flag=True, help="Show what would be written; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def deliver_cmd(
    paths: tuple[Path, ...], web_root: Path, max_size: str, base_url: str | None,
    expires_days: int, contact: str | None, listing: bool, remove: str | None, dry_run: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Publish chunks (files or their directory), or a package split on the way, into a new
    hard-to-guess directory of WEB_ROOT with a page for the PI; prints the link to send and
    a text for the ticket or the email.  --list and --remove manage old deliveries."""
    from almaqa2.transfer import deliver

    if listing or remove:
        if paths or (listing and remove):
            raise click.UsageError("--list and --remove take only --web-root")
        if remove:
            render.undelivered(deliver.remove(web_root, remove), as_json)
        else:
            render.deliveries(deliver.deliveries(web_root), as_json)
        return
    if not paths:
        raise click.UsageError("give the chunks (or their directory) or a package to deliver")
    notice = deliver.Notice(base_url, expires_days, contact)
    with progress_bar("publishing") as progress:
        done = deliver.deliver(paths, web_root, max_size, progress, notice, dry_run)
    render.delivered(done, deliver.INDEX, as_json, dry_run)


@cli.command("readme-template", short_help="Print a README header template to fill in.")
def readme_template() -> None:
    """Print a README header template to fill in and give with --readme."""
    from almaqa2.package.readme import TEMPLATE

    click.echo(TEMPLATE, nl=False)


@cli.command("config", short_help="Show the site defaults and where each comes from.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def config_cmd(ctx: click.Context, as_json: bool) -> None:
    """Show every option whose default is not the built-in one: its value and where it
    comes from (the config file or the environment); the command line overrides both."""
    from almaqa2.cli import settings

    defaults = ctx.find_root().default_map or {}  # read once, by main
    render.settings(settings.path(), settings.sources(cli, defaults), as_json)


@cli.command("legacy-module", short_help="Write QA2_Packaging_module.py for any CASA.")
@click.option("--print", "show", is_flag=True, help="Print the module instead.")
@click.option(
    "--install", "directory", type=click.Path(path_type=Path),
    help="Write it into this directory (made if missing), e.g. ~/.casa.",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Say what would be written; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def legacy_module_cmd(show: bool, directory: Path | None, dry_run: bool, as_json: bool) -> None:
    """Write the old call's module, QA2_Packaging_module.py, for the Python of any CASA
    (2.7 on, nothing but the standard library): 'from QA2_Packaging_module import *' then
    runs this installation's qa2.  --print shows it; --install DIR writes it there."""
    from almaqa2.package import legacy

    if show == (directory is not None):
        raise click.UsageError("give either --print or --install DIR")
    if directory is None:
        render.legacy_module(legacy.module_text(legacy.this_qa2()), as_json)
        return
    render.legacy_module_written(*legacy.install_module(directory, dry_run), dry_run, as_json)
