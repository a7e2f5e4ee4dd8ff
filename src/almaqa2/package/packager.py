"""``qa2 package``: check the request, plan, build in staging, install, write tickets.

This is the orchestration the CLI and the legacy ``QA_Packager`` share; it reads through
``scan``/``plan`` and writes only through ``materialize`` and the small writers.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from almaqa2 import forked, manifest, plainfile
from almaqa2.atomic import write_atomically
from almaqa2.data import ms
from almaqa2.errors import DestinationError, InputError, existing_dir
from almaqa2.package import facts, materialize, package_dir, readme, ticket
from almaqa2.package.layouts import recognise
from almaqa2.package.naming import APPENDS
from almaqa2.package.package_dir import MARKER, Package, is_ours
from almaqa2.package.plan import Plan, Uids, make_plan
from almaqa2.package.rules import MODES, PLACEHOLDER_MODES, style_for
from almaqa2.package.scan import Kind, SourceEntry
from almaqa2.progress import Progress
from almaqa2.uid import check_project_code, to_fs
from almaqa2.version import __version__

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """What ``qa2 package`` / ``QA_Packager`` is asked to do."""

    origpath: Path
    packpath: Path
    readme: Path
    mode: str = "fake"
    append: str = ""
    style: str = ""
    noms: bool = False
    pi_script: Path | None = None
    sg: str | None = None
    gous: str | None = None
    mous: str | None = None
    sb_name: str | None = None
    strict: bool = False
    allow_blank_header: bool = False
    jira: Path | None = None  # a directory to fill with what the ticket needs attached


@dataclass(frozen=True)
class Result:
    plan: Plan
    packpath: Path
    member_dir: Path
    tickets: tuple[Path, ...]  # the ticket zip and tar (none for a staged package)
    manifest: Path | None
    sizes: dict[str, int]  # {dest below the member dir: size in the package}


def choice(value: str, valid: tuple[str, ...], what: str) -> str:
    if value not in valid:
        shown = ", ".join(repr(v) if v == "" else v for v in valid)
        raise InputError(f"unknown {what} '{value}'", fix=f"use one of: {shown}")
    return value


def readable_file(path: Path, what: str, fix: str) -> Path:
    if not path.is_file():  # (a directory, or a pipe: never read, it would be waited on)
        said = "is not a plain file" if path.exists() else "not found"
        raise InputError(f"{what} {said}", path, fix=fix)
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read the {what}", path, fix="make it readable")
    return Path(os.path.realpath(path))


def pi_script_entry(path: Path | None) -> SourceEntry | None:
    if path is None or str(path) == "":
        return None
    if path.is_dir():
        path = path / "scriptForPI.py"
    path = readable_file(path, "scriptForPI", "give the scriptForPI.py file or its directory")
    st = os.stat(path)
    return SourceEntry(PurePosixPath("--pi-script"), path, Kind.FILE, st.st_size, st.st_dev)


def check_overlap(
    origpath: Path, path: Path, what: str = "packpath", option: str = "a packpath"
) -> None:
    """The reduction directory is never written: ``path``, where ``what`` is to be written
    (``option`` names the choice to make again), is neither in it nor around it."""
    inside = path.is_relative_to(origpath)
    contains = origpath.is_relative_to(path)
    if inside or contains:
        relation = "is" if path == origpath else ("is inside" if inside else "contains")
        raise DestinationError(
            f"{what} {relation} the reduction directory {origpath}",
            path,
            fix=f"choose {option} outside the reduction directory",
        )


def check_destination(packpath: Path) -> None:
    if packpath.exists() and not is_ours(packpath):
        raise DestinationError(
            "packpath exists and was not made by almaqa2, so it is not replaced",
            packpath,
            fix="move it away or choose another packpath",
        )


def destination(packpath: Path, origpath: Path) -> Path:
    """``packpath`` made absolute, once it is known to be a place for a package of
    ``origpath``: in an existing directory, named by a project code, apart from origpath
    (and so is the temporary directory the run writes in: ``check_temporary``)."""
    packpath = Path(os.path.abspath(packpath))
    holder = existing_dir(packpath.parent, "the directory to hold the package", "create it first")
    packpath = holder / packpath.name
    check_project_code(packpath.name)
    if packpath.is_symlink():
        raise DestinationError(
            "packpath is a symbolic link, which is never written through",
            packpath,
            fix=f"give the directory it points to ({os.path.realpath(packpath)}) if you mean it",
        )
    check_overlap(origpath, packpath)
    check_temporary(origpath)
    package_dir.check_outside_packages(holder, "a package", "a packpath")
    return packpath


def check_temporary(origpath: Path) -> None:
    """The temporary files of a run (the views MSes are read through, among others) are
    never made in the reduction directory: a $TMPDIR in it is refused (they were made
    there, and removed, as the reduction was read)."""
    named = {name: os.environ[name] for name in ms.TEMP_VARIABLES if os.environ.get(name)}
    for name, value in named.items():  # (as named: tempfile's look at one writes in it)
        temporary = Path(os.path.realpath(value))
        if temporary.is_relative_to(origpath):
            raise InputError(
                f"the temporary directory (${name}) is in the reduction directory, which is"
                " never written",
                temporary,
                fix=f"set {name} to a directory outside it",
            )


def resolve(request: Request) -> Request:
    """Check every path and choice of ``request`` (read-only) and return it normalised."""
    choice(request.mode, MODES, "mode")
    choice(request.append, APPENDS, "append")
    origpath = existing_dir(
        request.origpath, "origpath", "give the SB's reduction directory (the one holding the EBs)"
    )
    readme_path = readable_file(
        request.readme,
        "README header",
        "give a README header file (qa2 readme-template prints one)",
    )
    packpath = destination(request.packpath, origpath)
    if request.jira is not None:
        jira = existing_dir(request.jira.parent, "the directory to hold --jira", "create it first")
        jira /= request.jira.name
        check_overlap(origpath, jira, "the --jira folder", "a --jira folder")
        package_dir.check_outside_packages(jira, "the --jira folder", "a --jira folder")
        if request.mode == "fake":
            raise InputError(
                "a fake package has dummy tickets, nothing to attach",
                request.jira,
                fix="use --mode ticket (or copy, hard) with --jira",
            )
    return replace(
        request,
        origpath=origpath,
        readme=readme_path,
        packpath=packpath,
        sg=request.sg and to_fs(request.sg),
        gous=request.gous and to_fs(request.gous),
        mous=request.mous and to_fs(request.mous),
    )


def prepare(request: Request) -> Plan:
    """Resolve the request and plan the package; reads, never writes (``--dry-run``)."""
    return _plan(resolve(request))


def _plan(request: Request) -> Plan:
    """Plan a resolved request."""
    check_destination(request.packpath)
    if request.append and request.packpath.exists():
        _check_appendable(Package(request.packpath), request.mode)
    style = style_for(request.style, request.noms)
    return make_plan(
        recognise(request.origpath),
        style,
        project=request.packpath.name,
        mode=request.mode,
        append=request.append,
        uids=Uids(request.sg, request.gous, request.mous),
        existing=Package(request.packpath).units(),
        packpath=str(request.packpath),
        readme=request.readme,
        pi_script=pi_script_entry(request.pi_script),
        sb_name=request.sb_name,
        strict=request.strict,
    )


def _check_appendable(package: Package, mode: str) -> None:
    """An append in ``mode`` keeps ``package`` what it is: placeholders or data."""
    package.members()  # (a damaged marker is refused)
    made = package.mode or mode
    if (made in PLACEHOLDER_MODES) == (mode in PLACEHOLDER_MODES):
        return
    if made in PLACEHOLDER_MODES:
        held = "empty placeholders"
        fix = f"package its members again in {mode} mode (the first without --append), then"
        fix += " append this one"
    else:
        held = "data"
        data_modes = " or ".join(m for m in MODES if m not in PLACEHOLDER_MODES)
        fix = f"append in {data_modes} mode (--dry-run shows what it would make)"
    raise InputError(
        f"the package was made in {made} mode and holds {held}: a member appended in {mode}"
        " mode would mix placeholders and data in one package",
        package.path,
        fix=fix,
    )


def build(
    plan: Plan,
    packpath: Path,
    header: str,
    progress: Progress | None,
    tickets: bool = False,
    spare: forked.Spare | None = None,
) -> Built:
    """Check what the plan's mode needs, then write the package and install it, with its
    ticket files if asked (hold the packpath lock); ``spare``: see ``facts.collect``."""
    if plan.mode == "hard":
        materialize.check_same_device(plan, packpath)
    found = facts.collect(plan, reduce=plan.mode != "fake", spare=spare)
    try:
        return _build(plan, packpath, header, found, progress, tickets)
    except FileNotFoundError as exc:
        if _vanished(plan, exc.filename):
            raise InputError(
                "this file of the reduction vanished while it was being packaged",
                exc.filename,
                fix="let whatever removes files there finish (a CASA task?), then package again",
            ) from exc
        raise


def _vanished(plan: Plan, path: object) -> bool:
    """Whether the file ``path`` a write did not find is one the plan packages (or lies
    in a table it packages): a source found when the reduction was read, gone since."""
    if not isinstance(path, str):
        return False
    return any(Path(path).is_relative_to(p.source.path) for p in plan.placements)


def package(request: Request, progress: Progress | None = None) -> Result:
    """Build the package ``request`` asks for; see SPEC §4-§6 and §13.

    In fake mode, the README's facts of each EB are read from its MS by a helper while
    the package is written: it is forked first, and imports python-casacore while this
    process reads the reduction (a core that is otherwise idle at the start, and busy
    later with the links).  ``qa2`` forks it earlier still, before it imports the command
    line (``launch``), and it is taken here."""
    spare = forked.Spare(*facts.SPARE) if request.mode == "fake" else None
    with spare or contextlib.nullcontext():
        request = resolve(request)
        packpath = request.packpath
        with package_dir.holding(packpath):
            plan = _plan(request)
            header = plainfile.text(request.readme, "README header")
            _check_header(header, request)
            built = build(plan, packpath, header, progress, tickets=True, spare=spare)
        if request.jira is not None:
            ticket.attach(plan, built.tickets, request.jira)
    return Result(
        plan, packpath, packpath / plan.member_path, built.tickets, built.manifest, built.sizes
    )


def _check_header(header: str, request: Request) -> None:
    """Blank required header fields: refused for a package that goes to the PI (copy,
    hard) unless allowed, a warning for one that goes to review only (fake, ticket)."""
    blank = readme.blank_fields(header)
    if not blank:
        return
    said = f"the README header leaves {', '.join(blank)} blank"
    if request.mode in ("copy", "hard") and not request.allow_blank_header:
        raise InputError(
            said,
            request.readme,
            fix="fill them in (qa2 readme-template shows every field), or give"
            " --allow-blank-header",
        )
    log.warning("%s: %s", said, request.readme)


@dataclass(frozen=True)
class Built:
    sizes: dict[str, int]  # {dest below the member dir: size as it will be delivered}
    readme_text: str
    manifest: Path | None
    tickets: tuple[Path, ...]


def _build(
    plan: Plan,
    packpath: Path,
    header: str,
    found: facts.Facts,
    progress: Progress | None,
    tickets: bool,
) -> Built:
    """Write the whole package into staging (an append: the existing package as hard
    links, plus the new member, marker and manifest), then install it into packpath at
    once; the ticket files are written before and renamed into place after it."""
    fresh = plan.units.new_depth == 0
    hashing = plan.mode in ("copy", "hard")
    total = sum(p.size for p in plan.placements)
    done_bytes = 0
    with (
        package_dir.staging(packpath) as stage,
        manifest.Hasher(below=f"{stage}/") as hasher,
    ):
        members = [] if fresh else Package(packpath).members()
        kept = {} if fresh else Package(packpath).link_into(stage)  # the one walk of it

        def done(
            path: str, size: int, counted: int, source: str | None, copy: bool = False
        ) -> None:
            nonlocal done_bytes
            if hashing:
                hasher.add(path, size, source, copy)
            if progress:
                done_bytes += counted
                progress(done_bytes, total, path)

        member_dir = stage / plan.member_path
        member_dir.mkdir(parents=True)
        for name in readme.ALWAYS:
            (member_dir / name).mkdir()
        listens = hashing or progress is not None  # else no call per file: nobody hears it
        sizes = materialize.write_payload(plan, member_dir, done if listens else None, found.opened)
        readme_text = readme.render(plan, header, sizes, found)
        (member_dir / plan.readme_name).write_text(readme_text)
        if hashing:
            hasher.add(str(member_dir / plan.readme_name))
        new_files = hasher.results() if hashing else {}  # paths below the stage
        members.append(plan.member_path.as_posix())
        _write_marker(stage, plan, members)
        if hashing:
            new_files[MARKER] = manifest.md5_file(stage / MARKER)
            Package(stage, plan.project).write_digests(
                _kept_digests(Package(packpath), kept) | new_files
            )

        def install() -> None:
            package_dir.install(stage, packpath)

        written: tuple[Path, ...] = ()
        if tickets:
            review = None  # fake mode: dummy tickets, nothing to size (no walk of the member)
            if plan.mode != "fake":
                listed = new_files or _walked(member_dir, plan)
                others = _rest_as_delivered(plan, members, kept, listed)
                expected = ticket.expected_size(plan, sizes, len(readme_text.encode()), others)
                review = ticket.Review(
                    expected, _review(plan, header, readme_text, expected, found, sizes)
                )
            written = ticket.write(plan, packpath, readme_text, review, then=install)
        else:
            install()
    return Built(sizes, readme_text, packpath / manifest.NAME if hashing else None, written)


def _review(
    plan: Plan,
    header: str,
    readme_text: str,
    expected: str,
    found: facts.Facts,
    sizes: dict[str, int],
) -> ticket.Page:
    """How the ticket's review page is rendered for this package (its modules imported
    here: fake mode, the most frequent, has no review page)."""
    from almaqa2.helpers import fluxscale
    from almaqa2.package import review

    tree = readme.package_tree(plan, sizes)
    plot = None
    if found.fluxes is not None:
        with contextlib.suppress(InputError):  # no matplotlib: the page has the table only
            buffer = io.BytesIO()
            fluxscale.plot(found.fluxes, buffer, title=plan.sb_name or plan.project)
            plot = buffer.getvalue()

    def page(items: list[tuple[str, Path | bytes]], embed: bool) -> str:
        return review.render(
            plan, header, readme_text, expected, items, found.fluxes, tree, embed, plot
        )

    return page


def _write_marker(where: Path, plan: Plan, members: list[str]) -> None:
    write_atomically(where / MARKER, _marker(plan, members, plan.mode))


def _marker(plan: Plan, members: list[str], mode: str) -> str:
    info = {
        "tool": "almaqa2",
        "version": __version__,
        "style": plan.style.name,
        "mode": mode,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "members": members,
    }
    return json.dumps(info, indent=2) + "\n"


def _rest_as_delivered(
    plan: Plan, members: list[str], kept: dict[str, int], new_files: Iterable[str]
) -> int:
    """The size of the package beside the new member's files, as a copy or hard package
    has it: the files ``kept`` from an append, the marker (listing ``members``), and the
    manifest of them, the member's ``new_files`` and the marker (paths below the package)."""
    ours = {rel: size for rel, size in kept.items() if rel not in (MARKER, manifest.NAME)}
    marker = _marker(plan, members, plan.mode if plan.mode in ("copy", "hard") else "copy")
    listed = {*ours, *new_files, MARKER}
    return sum(ours.values()) + len(marker.encode()) + manifest.size(plan.project, listed)


def _walked(member_dir: Path, plan: Plan) -> list[str]:
    """The files of the member being built, by their paths below the package."""
    return [f"{plan.member_path.as_posix()}/{rel}" for rel in manifest.files_under(member_dir)]


def _kept_digests(package: Package, kept: dict[str, int]) -> dict[str, str]:
    """After an append: the digests of the files ``kept`` from the package as its manifest
    lists them; a file it does not list (a fake package's) is hashed now."""
    listed = package.digests()
    return {
        rel: listed[rel] if rel in listed else manifest.md5_file(package.path / rel)
        for rel in kept
        if rel != MARKER
    }
