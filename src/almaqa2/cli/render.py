"""How each command's result is shown: lines and tables for people, one JSON document with
``--json``.  The commands parse, call the library and hand the result here; nothing else
in ``cli`` prints a result, so the text and the JSON of a command are read side by side.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from almaqa2.cli.app import err, out, warned
from almaqa2.errors import shown
from almaqa2.sizes import human_size, size_in
from almaqa2.uid import short_name

if TYPE_CHECKING:
    from almaqa2.batch.ledger import Record
    from almaqa2.batch.plan import BatchPlan
    from almaqa2.batch.runner import Outcome as BatchOutcome
    from almaqa2.data.split import Made, Planned
    from almaqa2.helpers.allfluxes import Outcome
    from almaqa2.helpers.check import Verdict
    from almaqa2.helpers.clear import Clearing
    from almaqa2.helpers.download import Download
    from almaqa2.helpers.fluxequal import Link
    from almaqa2.helpers.fluxscale import Fluxes
    from almaqa2.helpers.lock import Holder
    from almaqa2.helpers.start import Area
    from almaqa2.package.packager import Result
    from almaqa2.package.plan import Plan
    from almaqa2.transfer.deliver import Delivery, Published
    from almaqa2.transfer.inspection import Inventory, Ticket
    from almaqa2.transfer.tarsplit import Split
    from almaqa2.transfer.untar import Untarred
    from almaqa2.transfer.verify import Report


def _json(document: dict[str, Any], problems: Sequence[dict[str, Any]] = ()) -> None:
    """Printed even with -q: a script asked for it.

    Every document opens with one envelope: ``ok`` (nothing wrong was found), ``warnings``
    (what the run warned of, one sentence each) and ``problems`` (what was found wrong:
    objects, each with its sentence as ``text``), given here or as the document's own
    ``problems``."""
    document = dict(document)
    document.pop("ok", None)
    found = [dict(p) for p in document.pop("problems", problems)]
    envelope = {"ok": not found, "warnings": list(warned.seen), "problems": found}
    quiet, out.quiet = out.quiet, False
    try:
        out.print_json(  # a path: its text; no byte but ASCII (a C1 control is no letter)
            json.dumps({**envelope, **document}, default=str), ensure_ascii=True
        )
    finally:
        out.quiet = quiet


def failure(sentence: str, code: int) -> None:
    """What ``--json`` prints when the command stopped (bad input, a refusal)."""
    _json({"exit_code": code}, [{"text": sentence}])


def _line(text: str) -> None:
    """A line of plain text: paths and names are never read as markup."""
    out.print(text, markup=False, highlight=False)


# -- packaging -----------------------------------------------------------------------------


def plan(plan: Plan, as_json: bool) -> None:
    """What a ``--dry-run`` of package or stage would do."""
    if as_json:
        _json(plan.as_dict())
        return
    _line(f"plan: {plan.project}/{plan.member_path} ({plan.mode}), from {plan.reduction.root}")
    for p in plan.placements:  # whole paths, one line each: for reading, grep and copying
        dest = p.dest.as_posix() + ("/" if p.source.members else "")
        _line(f"  {p.source.rel} -> {f'{p.bundle.path} ({p.bundle.inside})' if p.bundle else dest}")
    for skip in plan.skipped:
        out.print(f"[dim]not packaged: {escape(f'{skip.source.rel} ({skip.why})')}[/dim]")
    for entry in plan.unclassified:
        out.print(f"[yellow]unclassified: {escape(str(entry.rel))}[/yellow]")
    out.print("dry run: nothing was written")


def packaged(result: Result, as_json: bool) -> None:
    """A package or staged package made."""
    from almaqa2.package.legacy import printed_tree

    if as_json:
        _json(
            {
                **result.plan.as_dict(),
                "packpath": str(result.packpath),
                "member_dir": str(result.member_dir),
                "tickets": [str(p) for p in result.tickets],
                "manifest": str(result.manifest) if result.manifest else None,
                "tree": printed_tree(result),  # as the old call printed it
            }
        )
        return
    out.print(_summary(result))
    out.print(f"package: {result.packpath}", markup=False)
    for path in result.tickets:
        out.print(f"ticket:  {path}", markup=False)
    if result.manifest:
        out.print(f"manifest: {result.manifest}", markup=False)
    if result.plan.unclassified:
        out.print(f"[yellow]{len(result.plan.unclassified)} unclassified file(s) left out[/yellow]")


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


# -- transfer ------------------------------------------------------------------------------


def inventory(inventory: Inventory, as_json: bool) -> None:
    """What ``inspect`` found in a package or chunks."""
    document = inventory.as_dict()
    if as_json:
        _json(document)
        return
    note = " (a doubled project directory, read as one)" if inventory.doubled else ""
    for project in document["projects"]:
        _line(f"project {project['project']}: {human_size(project['size'])} in"
              f" {inventory.source}{note}")  # fmt: skip
        for sg in project["science_goals"]:
            _line(f"  {sg['name']}")
            for group in sg["groups"]:
                _line(f"    {group['name']}")
                for m in group["members"]:
                    _member(m)


def _member(m: dict[str, Any]) -> None:
    _line(
        f"      {m['name']}: {m['calibration']} calibration, {len(m['ebs'])} EB(s),"
        f" {m['files']} files, {human_size(m['size'])}"
    )
    for eb in m["ebs"]:
        _line(f"        EB {eb}")
    if m["script_for_pi"]:
        creates = ", ".join(m["script_for_pi_creates"]) or "nothing listed"
        _line(f"        {m['script_for_pi']} creates: {creates}")
        if m["split_creates"]:
            _line("        then 'qa2 split calibrated' (science spws, targets) makes: "
                  + ", ".join(m["split_creates"]))  # fmt: skip
    else:
        _line("        no scriptForPI in script/")
    _line("        " + ", ".join(f"{k} {human_size(v)}" for k, v in m["sizes"].items()))


def ticket(ticket: Ticket, as_json: bool) -> None:
    """What ``inspect`` found in a review ticket."""
    if as_json:
        _json(ticket.as_dict())
        return
    if ticket.dummy:
        _line(f"{ticket.path}: a dummy ticket (the package was made in fake mode)")
        return
    _line(f"ticket {ticket.path}")
    for label in ("Project code", "SB name", "MOUS UID", "PI name", "Project title", "QA2 Result"):
        _line(f"  {label}: {ticket.header.get(label) or '(blank)'}")
    size = "unknown" if ticket.expected_total is None else human_size(ticket.expected_total)
    _line(f"  expected package size: {size}")
    _line(f"  {len(ticket.checklists)} checklist(s), {len(ticket.plots)} QA2 plot(s),"
          f" {len(ticket.scripts)} script(s); open review.html inside it to see them")  # fmt: skip
    for name in ticket.checklists:
        _line(f"    {name}")
    for warning in ticket.warnings:
        out.print(f"  [yellow]warning:[/yellow] {escape(warning)}")


def split(split: Split, as_json: bool, dry_run: bool, unit: str) -> None:
    """The chunks ``tarsplit`` wrote (or, with ``dry_run``, would write), their sizes in
    the ``unit`` of the --max-size typed."""
    chunks: list[dict[str, Any]] = [
        {"name": c.name, "size": c.size, "md5": split.digests.get(c.name),
         "entries": len(c.entries)}
        for c in split.chunks
    ]  # fmt: skip
    if as_json:
        _json({"chunks": chunks, "md5sums": str(split.md5sums), "tag": split.tag,
               "tagged_by": split.tagged_by, "dry_run": dry_run})  # fmt: skip
        return
    _line(f"named by {split.tagged_by}: {split.tag}")
    for chunk in chunks:
        would = "would write " if dry_run else ""
        _line(f"{would}{chunk['name']}  {size_in(chunk['size'], unit)}  {chunk['entries']} entries")
    _line("dry run: nothing was written" if dry_run else f"checksums: {split.md5sums}")


# -- the PI's science split ----------------------------------------------------------------


def science_plan(planned: list[Planned], as_json: bool) -> None:
    """What ``split --dry-run`` would make."""
    if as_json:
        _json({"dry_run": True, "splits": [p.as_dict() for p in planned]})
        return
    for one in planned:
        _line(f"{one.ms}:")
        for step in one.as_dict()["makes"]:
            _line(f"  would make {one.into / step['name']} ({_selected(step)})")
    out.print("dry run: nothing was written")


def _selected(step: dict[str, Any]) -> str:
    said = [f"{step['datacolumn']} as DATA"]
    if step["spws"] is not None:
        said.append("spws " + ", ".join(f"{s['id']} ({s['channels']} ch)" for s in step["spws"]))
    if step["states"] is not None:
        said.append(f"{len(step['states'])} state(s): " + "; ".join(step["states"]))
    if step["fields"] is not None:
        said.append("fields " + ", ".join(step["fields"]))
    return ", ".join(said)


def science_split(planned: list[Planned], made: list[Made], as_json: bool) -> None:
    """The MSes ``split`` made, each with its flag versions."""
    if as_json:
        _json({"splits": [p.as_dict() for p in planned], "made": [m.as_dict() for m in made]})
        return
    for m in made:
        _line(f"made {m.path} ({m.rows} rows, {human_size(m.size)}; flags saved as"
              f" original_flags in {m.path.name}.flagversions)")  # fmt: skip


def report(report: Report, as_json: bool = False) -> None:
    """What ``verify`` (or ``untar`` before extracting) found."""
    if as_json:
        _json(report.as_dict())
        return
    if report.ok:
        out.print(f"[green]OK[/green]: {report.checked} files and chunks match their md5s")
        return
    for problem in report.problems:  # one line each, whole paths: for reading and for grep
        _line(str(problem))
    out.print(f"[red]FAILED[/red]: {len(report.problems)} problem(s) in {report.checked} checked")


def refused_untar(report_: Report, as_json: bool = False) -> None:
    report(report_, as_json)
    err.print("nothing was extracted", highlight=False)


def untarred(done: Untarred, as_json: bool = False, dry_run: bool = False) -> None:
    if as_json:
        _json({"package": str(done.package), "dry_run": dry_run, **done.report.as_dict()})
    elif dry_run:
        _line(f"would check {len(done.report.paths)} chunk(s) and extract {done.package}")
        _line("dry run: nothing was written")
    else:
        _line(f"extracted, {done.report.checked} files and chunks checked: {done.package}")


def delivered(done: Published, index: str, as_json: bool, dry_run: bool = False) -> None:
    """What ``deliver`` published: the files, the link to send and a text to paste."""
    if as_json:
        _json({**done.as_dict(), "message": done.message(), "dry_run": dry_run})
        return
    if dry_run:
        for name, size, _ in done.files:
            _line(f"would publish {name}  {human_size(size)}")
        _line(f"into a new directory {done.folder}; dry run: nothing was written")
        return
    for name, size, md5 in done.files:
        _line(f"{name}  {human_size(size)}  {md5}")
    _line(f"published: {done.folder / index}")
    _line(f"send: {done.url}" if done.url else "send: its address (give --base-url to print it)")
    _line("")
    out.print(done.message(), markup=False, highlight=False, end="")


def deliveries(found: list[Delivery], as_json: bool) -> None:
    if as_json:
        _json({"deliveries": [d.as_dict() for d in found]})
        return
    for delivery in found:
        record = delivery.record
        size = human_size(sum(f["size"] for f in record.get("files", [])))
        state = "EXPIRED" if delivery.expired else f"until {record.get('expires')}"
        _line(f"{delivery.folder.name}  {record.get('created')}  {size}  {state}")
    if not found:
        _line("no deliveries")


def undelivered(gone: Delivery, as_json: bool) -> None:
    if as_json:
        _json({"removed": gone.as_dict()})
    else:
        _line(f"removed: {gone.folder}")


# -- the reducer's helpers -----------------------------------------------------------------


def lock(action: str, name: str, holder: Holder | None, said: str, as_json: bool) -> None:
    if as_json:
        _json({"action": action, "name": name, "holder": holder and holder.as_dict()})
    else:
        out.print(said, markup=False)


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.1f} %" if math.isfinite(fraction) else "n/a"


def fluxes(fluxes: Fluxes, png: Path | None, threshold: float, as_json: bool) -> None:
    """The fluxscale results of one EB or of every EB of an SB, outliers marked ``!``."""
    if as_json:
        problems = [{"text": str(o), **o.as_dict()} for o in fluxes.outliers(threshold)]
        _json(fluxes.as_dict(threshold), problems)
        return
    outliers = fluxes.outliers(threshold)
    marked = {(o.measurement.eb, o.measurement.source, o.measurement.spw) for o in outliers}
    for source in sorted({m.source for m in fluxes.measurements}):
        table = Table(title=source, show_edge=False)
        for column in ("spw", "GHz", *map(short_name, fluxes.ebs), "spread"):
            table.add_column(column, justify="right")
        for row in fluxes.by_spw(source):
            cells = [
                "-" if (m := row.by_eb.get(eb)) is None
                else f"{m.flux:.4g} ± {m.error:.2g}"
                + (" [red]![/red]" if (eb, source, row.spw) in marked else "")
                for eb in fluxes.ebs
            ]  # fmt: skip
            spread = "-" if row.spread is None else _percent(row.spread)
            table.add_row(str(row.spw), f"{row.ghz:.6f}", *cells, spread)
        out.print(table)
    for fit in fluxes.fits:
        spidx = f", spectral index {fit.spidx:.3g} ± {fit.spidx_error:.2g}" if fit.spidx else ""
        _line(
            f"{short_name(fit.eb)}: {fit.source} {fit.flux:.4g} ± {fit.error:.2g} Jy at"
            f" {fit.freq_ghz:g} GHz{spidx}"
        )
    for outlier in outliers:
        out.print(f"[yellow]outlier (> {threshold:.0%}):[/yellow] {escape(str(outlier))}")
    if png is not None:
        _line(f"plot: {png}")


def links(links: list[Link], dry_run: bool, as_json: bool) -> None:
    """The links ``fluxequal`` made or would make."""
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
        _json({"dry_run": dry_run, "links": rows})
        return
    for row in rows:
        out.print(f"{row['link']} -> {row['target']}  ({row['state']})", markup=False)


def clearing(clearing: Clearing, dry_run: bool, as_json: bool) -> None:
    """What ``clear`` keeps and deletes (before it asks)."""

    def below(path: Path) -> str:
        return path.relative_to(clearing.directory).as_posix()

    if as_json:
        _json(
            {
                "directory": str(clearing.directory),
                "kind": clearing.kind,
                "keep": [below(p) for p in clearing.keep],
                "delete": [p.name for p in clearing.delete],
                "dry_run": dry_run,
            }
        )
        return
    out.print("Keeping the following files:", markup=False)
    for path in clearing.keep:
        out.print(f" - {below(path)}", markup=False)
    if dry_run:
        for path in clearing.delete:
            out.print(f"would delete: {path.name}", markup=False)


def nothing_deleted() -> None:
    out.print("nothing deleted")


def cleared(count: int, as_json: bool) -> None:
    if not as_json:
        out.print(f"deleted {count} entries", markup=False)


def allfluxes(done: Outcome, text: str, as_json: bool) -> None:
    """allFluxes.txt as made or read (``text``), and the rows flagged."""
    if as_json:
        _json(
            {
                "file": str(done.path),
                "written": done.written,
                "rows": [row.as_dict() for row in done.rows],
                "flags": [{**f.row.as_dict(), "fitted": f.fitted, "deviation": f.deviation}
                          for f in done.flags],
            },
            [{"text": str(f)} for f in done.flags],
        )  # fmt: skip
        return
    out.print(text, markup=False, end="")
    for flag in done.flags:
        out.print(f"[yellow]flagged:[/yellow] {escape(str(flag))}")
    out.print(f"{'written' if done.written else 'read'}: {done.path}", markup=False)


def checklist(origpath: Path, applied: str, results: list[Verdict], as_json: bool) -> None:
    if as_json:
        failed = [{"text": f"{r.item}: {r.detail}", **r.as_dict()} for r in results if not r.ok]
        _json({"list": applied, "items": [r.as_dict() for r in results]}, failed)
        return
    table = Table(title=f"final checklist, {applied}: {origpath}", show_edge=False)
    for column in ("item", "where", "", "detail"):
        table.add_column(column)
    for r in results:
        table.add_row(r.item, r.where, "pass" if r.ok else "[red]FAIL[/red]", escape(r.detail))
    out.print(table)


def to_download(names: list[str], md5_url: str | None, out_dir: Path, as_json: bool) -> None:
    """What ``download --dry-run`` would fetch."""
    if as_json:
        _json({"dry_run": True, "tars": names, "md5s": md5_url})
        return
    for name in names:
        part = out_dir / f"{name}.part"
        state = f"resume at {human_size(part.stat().st_size)}" if part.exists() else "fetch"
        out.print(f"would {state}: {name}", markup=False)


def downloaded(result: Download, as_json: bool) -> None:
    if as_json:
        rows = [vars(f) for f in result.fetched]
        _json({"out": str(result.out), "files": rows, "extracted": result.extracted})
        return
    for f in result.fetched:
        resumed = f" (resumed at {human_size(f.resumed_from)})" if f.resumed_from else ""
        out.print(f"{f.name}: md5 OK{resumed}", markup=False)
    for name in result.extracted:
        out.print(f"unpacked: {shown(str(result.out / name))}", markup=False)  # the tar's


def sbs(archive: Path, found: list[str], as_json: bool) -> None:
    """``start`` without an SB, when the archive holds none or several to choose from."""
    if as_json:
        _json({"archive": str(archive), "sbs": found})
        return
    out.print(f"SBs in {archive}: " + (", ".join(found) or "none"), markup=False)


def area(area: Area, dry_run: bool, as_json: bool) -> None:
    """The reduction area ``start`` set up (or would)."""
    if as_json:
        _json({**area.as_dict(), "dry_run": dry_run})
        return
    said = "would set up" if dry_run else "set up"
    out.print(f"{said} {area.path} ({area.layout}, {len(area.ebs)} EB(s))", markup=False)
    for rel in area.tree:
        out.print(f"  {rel}", markup=False)


# -- qa2 batch -----------------------------------------------------------------------------


def batch_init(written: tuple[Path, int], as_json: bool) -> None:
    path, count = written
    if as_json:
        _json({"plan": str(path), "found": count})
        return
    _line(f"{path}: {count} reduction(s) and run(s) listed; fill in every FILL-IN, then run it")


def batch_plan(
    plan: BatchPlan, steps: tuple[str, ...], last: dict[str, Record], as_json: bool
) -> None:
    """What ``batch --dry-run`` shows: each job and what the ledger says of it."""
    if as_json:
        jobs = [{**job.as_dict(), "last": last.get(job.name)} for job in plan.jobs]
        _json({"plan": str(plan.path), "ledger": str(plan.ledger), "steps": steps, "jobs": jobs})
        return
    _line(f"batch: {plan.path} ({', '.join(steps)}), ledger {plan.ledger}")
    for job in plan.jobs:  # lines, not a table: whole paths, for reading and for grep
        record = last.get(job.name)
        state = f"{record['status']} {record.get('started', '')}" if record else "not run yet"
        _line(f"  {job.name} ({job.kind}): {job.origpath} -> {job.packpath} [{state}]")
    out.print("dry run: nothing was started")


def batch_outcome(outcome: BatchOutcome, as_json: bool) -> None:
    """Each MOUS's status, size and time, then each failure's sentence and each warning,
    then the totals."""
    if as_json:
        failed = [r for r in outcome.records if r["status"] == "failed"]
        _json(outcome.as_dict(), [{"text": f"{r['name']}: {r.get('error')}"} for r in failed])
        return
    table = Table(title=f"batch: {outcome.plan.path}", show_edge=False)
    for column in ("name", "status", "size", "seconds", "chunks"):
        table.add_column(column, justify="left" if column in ("name", "status") else "right")
    for record in outcome.records:
        status = record["status"]
        table.add_row(
            escape(record["name"]),
            "[red]failed[/red]" if status == "failed" else status,
            human_size(record.get("bytes", 0)),
            f"{record.get('seconds', 0):.1f}",
            str(len(record.get("chunks", []))),
        )
    out.print(table)
    for record in outcome.records:
        if record["status"] == "failed":
            _line(f"failed: {record['name']}: {record['error']}")
        for warning in record.get("warnings", []):
            _line(f"warning: {record['name']}: {warning}")
    totals = outcome.as_dict()
    _line(
        f"{totals['done']} done, {totals['skipped']} skipped, {totals['failed']} failed;"
        f" {human_size(totals['bytes'])} in {outcome.seconds:.1f} s; ledger: {outcome.plan.ledger}"
    )


def settings(path: Path, rows: list[tuple[str, str, Any, str]], as_json: bool) -> None:
    """``qa2 config``: the file read, and each value that is not the built-in default."""
    exists = os.path.isfile(path)
    where = f"{path}" if exists else f"{path} (none there)"
    if as_json:
        values = [{"command": c, "option": o, "value": v, "from": f} for c, o, v, f in rows]
        _json({"file": str(path), "exists": exists, "values": values})
        return
    _line(f"config file: {where}")
    if not rows:
        _line("every option is at its built-in default")
        return
    table = Table(show_edge=False)
    for column in ("command", "option", "value", "from"):
        table.add_column(column)
    for command, option, value, source in rows:
        table.add_row(escape(command), option, escape(str(value)), escape(source))
    out.print(table)


def legacy_module(text: str, as_json: bool) -> None:
    """``legacy-module --print``: the module's text."""
    if as_json:
        _json({"module": text})
    else:
        out.print(text, markup=False, highlight=False, end="")


def legacy_module_written(path: Path, qa2: Path, dry_run: bool, as_json: bool) -> None:
    """``legacy-module --install``: where the module was (or would be) written."""
    if as_json:
        _json({"file": str(path), "qa2": str(qa2), "dry_run": dry_run})
        return
    _line(f"{'would write' if dry_run else 'wrote'} {path} (it runs {qa2})")
    _line(f"in CASA: sys.path.insert(0, {str(path.parent)!r}); from {path.stem} import *")
