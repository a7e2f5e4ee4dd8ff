"""``review.html``: the page a data reduction manager reads to review a ticket without
unpacking it file by file: the warnings of the run, the README, the checklists, the QA2
plots as thumbnails that open full size, the fluxscale results of each EB, the package
tree with sizes and the expected size.

The page is made from the plan, the README text and the facts already read; the only files
it reads are the ticket's own (checklists, and images to embed).  Images are linked by
their path inside the ticket (the page at its top: relative links that work in the
unzipped ticket and wherever its files are served), or embedded as ``data:`` URIs for
the copy written beside the ticket files.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import urllib.parse
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from almaqa2.helpers.fluxscale import THRESHOLD, Fluxes
from almaqa2.package.plan import Plan
from almaqa2.package.readme import blank_fields, readable
from almaqa2.uid import short_name
from almaqa2.version import __version__

NAME = "review.html"
IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".svg")

Item = tuple[str, Path | bytes]
"""A file of the ticket: (name inside it, source file or bytes)."""

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em;
       padding: 0 1em; color: #1d1d1f; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; }
code, pre, .name { font-family: ui-monospace, monospace; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; white-space: pre-wrap; }
.warn { background: #fff4e0; border-left: 4px solid #e08a00; padding: .5em 1em; }
.ok { color: #1a7f37; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; width: 240px; } figure img { width: 240px; border: 1px solid #ccc; }
figcaption { font-size: .8em; word-break: break-all; font-family: ui-monospace, monospace; }
table { border-collapse: collapse; } td, th { padding: .2em .6em; text-align: right; }
tr:nth-child(even) { background: #f6f6f6; } .outlier { color: #c00; font-weight: bold; }
"""


def warnings(plan: Plan, header: str) -> list[str]:
    """What the DRM must see before anything else: the run's warnings, from the plan."""
    said = [f"unclassified, not packaged: {e.rel}" for e in plan.unclassified]
    blank = blank_fields(header)
    if blank:
        said.append(f"the README header leaves {', '.join(blank)} blank")
    if plan.style.noms and not any("scriptForPI" in p.dest.name for p in plan.placements):
        said.append("no scriptForPI.py is delivered: the PI cannot regenerate the calibrated data")
    if plan.style.tp:
        said.append("a total-power reduction: single-dish scripts, no interferometric MS")
    return said


def render(
    plan: Plan,
    header: str,
    readme_text: str,
    expected: str,
    items: list[Item],
    fluxes: Fluxes | None,
    tree: list[str],
    embed: bool = False,
    fluxplot: bytes | None = None,
) -> str:
    """The page (see the module); ``items``: the ticket's other files, ``tree``: the
    README's tree lines, ``fluxplot``: a PNG of the fluxscale results, if one was made."""
    link = _embedded(items) if embed else _relative
    title = f"QA2 review: {plan.project} {plan.sb_name or ''} {plan.uids.mous or ''}".strip()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Style <code>{html.escape(plan.style.name or '-')}</code>, mode"
        f" <code>{plan.mode}</code>, member <code>{html.escape(plan.member_path.as_posix())}"
        f"</code>; made with almaqa2 {__version__}.</p>",
    ]
    said = warnings(plan, header)
    shown = [f'<p class="warn">{html.escape(w)}</p>' for w in said]
    parts += _section("warnings", "Warnings", shown or ['<p class="ok">none</p>'])
    checklists = [(n, s) for n, s in items if "checklist" in n.lower() and _is_text(n)]
    parts += _section(
        "checklists",
        f"Checklists ({len(checklists)})",
        [f'<h3 class="name">{html.escape(n)}</h3><pre>{_text(s)}</pre>' for n, s in checklists],
    )
    plots = [n for n, _ in items if n.lower().endswith(IMAGES)]
    figures = [
        f'<figure><a href="{src}"><img src="{src}" alt="{html.escape(n)}"></a>'
        f"<figcaption>{html.escape(n)}</figcaption></figure>"
        for n in plots
        for src in (link(n),)  # an embedded image is read and encoded once
    ]
    parts += _section(
        "plots", f"QA2 plots ({len(plots)})", ['<div class="plots">', *figures, "</div>"]
    )
    parts += _section("fluxscale", "Fluxscale", _fluxes(fluxes, fluxplot))
    parts += _section("readme", "README", [f"<pre>{html.escape(readme_text)}</pre>"])
    parts += _section("tree", "Package tree", [f"<pre>{html.escape(chr(10).join(tree))}</pre>"])
    parts += _section("size", "Expected size", [f"<pre>{html.escape(expected)}</pre>"])
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _section(anchor: str, title: str, body: list[str]) -> list[str]:
    return [f'<section id="{anchor}"><h2>{html.escape(title)}</h2>', *body, "</section>"]


def _fluxes(fluxes: Fluxes | None, fluxplot: bytes | None) -> list[str]:
    if fluxes is None:
        return ["<p>No fluxscale results in the package.</p>"]
    outliers = fluxes.outliers(THRESHOLD)
    marked = {(o.measurement.eb, o.measurement.source, o.measurement.spw) for o in outliers}
    parts = []
    for source in sorted({m.source for m in fluxes.measurements}):
        head = "".join(f"<th>{html.escape(short_name(eb))}</th>" for eb in fluxes.ebs)
        rows = []
        for row in fluxes.by_spw(source):
            cells = []
            for eb in fluxes.ebs:
                m = row.by_eb.get(eb)
                bad = (eb, source, row.spw) in marked
                text = "-" if m is None else f"{m.flux:.4g} ± {m.error:.2g}" + (" !" if bad else "")
                cells.append(f'<td class="outlier">{text}</td>' if bad else f"<td>{text}</td>")
            spread = "-" if row.spread is None else f"{row.spread:.1%}"
            rows.append(f"<tr><td>{row.spw}</td><td>{row.ghz:.4f}</td>{''.join(cells)}"
                        f"<td>{spread}</td></tr>")  # fmt: skip
        parts.append(
            f"<h3>{html.escape(source)}</h3><table><tr><th>spw</th><th>GHz</th>{head}"
            f"<th>spread</th></tr>{''.join(rows)}</table>"
        )
    parts += [f'<p class="warn">outlier: {html.escape(str(o))}</p>' for o in outliers]
    if fluxplot is not None:
        data = base64.b64encode(fluxplot).decode()
        parts.append(f'<p><img src="data:image/png;base64,{data}" alt="fluxscale plot"></p>')
    return parts


def _is_text(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in (".txt", ".md", ".log", "")


def _text(source: Path | bytes) -> str:
    data = source if isinstance(source, bytes) else source.read_bytes()
    return html.escape(data.decode("utf-8", "replace"))


def _relative(name: str) -> str:
    """The link to the ticket file ``name`` beside the page, quoted: a '#', '?' or '%' in
    a plot's name would otherwise end its path (the image did not load).  A name that is
    not UTF-8 is linked as the ticket zip names it, its bytes spelt \\xNN (``readable``)."""
    return html.escape(urllib.parse.quote(readable(name)), quote=True)


def _embedded(items: list[Item]) -> Callable[[str], str]:
    """Image links as ``data:`` URIs, for a page that travels alone."""
    sources = dict(items)

    def link(name: str) -> str:
        source = sources[name]
        data = source if isinstance(source, bytes) else source.read_bytes()
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return f"data:{kind};base64,{base64.b64encode(data).decode()}"

    return link
