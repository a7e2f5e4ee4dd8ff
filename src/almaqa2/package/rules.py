"""What goes where: the packaging styles and the classification rules, as data.

A rule says: in this place of the reduction, an entry of this kind whose name matches
this pattern goes to this destination (relative to the member directory).  The first rule
that matches wins; an entry no rule matches is "unclassified".  Places: ``eb`` directly
in an EB directory, ``qa2`` in an EB's ``qa2/``, ``eb-nested`` deeper in an EB directory,
``sb`` anywhere else; ``pipeline`` a
pipeline run's ``products/``; ``kept`` a staged package's delivery directories
(``calibration/``, ``script/``...), ``restore`` what its scriptForPI restored.

Destination templates use ``{name}`` (the entry's name), ``{rel}`` (its path in the
reduction), ``{uid}`` and ``{short}`` (the EB's UID and short name).  ``NEVER`` means
"not packaged, for the reason given"; ``NOTES`` means "text for the README";
``PI_SCRIPT`` means "the scriptForPI to deliver".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from almaqa2.errors import InputError
from almaqa2.package.scan import Kind

NEVER = None
NOTES = "@notes"
PI_SCRIPT = "@pi-script"


@dataclass(frozen=True)
class Style:
    """A packaging style: which generation of delivery rules to follow."""

    name: str
    cycle: int | None
    noms: bool  # True: no MeasurementSets in the package
    pipe: bool = False  # the reduction may be a staged pipeline package
    compress_pb: bool = False  # gzip primary-beam and mask FITS images
    uid_names: bool = False  # name directories by the UIDs the reduction reveals
    modern: bool = False  # SPEC §4.1: ``member.<MOUS>.`` prefixes and tgz bundles
    tp: bool = False  # a total-power reduction: its layout overrides the style's MSes


def _style(name: str, cycle: int, noms: bool = True) -> Style:
    """The style of ``cycle``: what each cycle added to the delivery (SPEC §4)."""
    return Style(
        name,
        cycle,
        noms,
        pipe="-pipe" in name,
        compress_pb=cycle >= 3,
        uid_names=cycle >= 4,
        modern=cycle >= 5,
    )


MODES = ("fake", "ticket", "copy", "hard")
"""How files reach the package: empty placeholders, ticket files only, copies, hard links."""

PLACEHOLDER_MODES = ("fake", "ticket")
"""The modes whose package holds empty placeholders, not data: it is never split for
delivery, and an append never mixes them with the others in one package (a copy appended
to a fake package delivered its empty files as data, with md5s that matched)."""

STAGE_MODES = ("copy", "hard", "fake")
"""How ``qa2 stage`` makes a staged package (it has no tickets)."""

AREA_LAYOUTS = ("allegro", "nrao")
"""The regional centres' layouts of a reduction area (``qa2 start``)."""

LAST_CYCLE = 12

STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        _style("cycle0-nopipe", 0, noms=False),
        _style("cycle1-nopipe", 1),
        _style("cycle2-nopipe", 2),
        _style("cycle2-pipe1", 2),
        _style("cycle3-nopipe", 3),
        _style("cycle3-pipe1", 3),
        _style("cycle4-nopipe", 4),
        _style("cycle4-pipe", 4),
        *(
            _style(f"cycle{cycle}-{kind}", cycle)
            for cycle in range(5, LAST_CYCLE + 1)
            for kind in ("nopipe", "pipe")
        ),
    )
}

STAGE = Style("pipeline-stage", None, noms=True, pipe=True, compress_pb=True, uid_names=True)
"""What ``qa2 stage`` follows: SPEC §7 (UID directory names and PB/mask gzip always)."""


def style_for(name: str, noms: bool) -> Style:
    """The style called ``name``; the legacy empty style takes ``noms`` from the caller."""
    if name == "":
        return Style("", None, noms=noms)
    try:
        return STYLES[name]
    except KeyError:
        raise InputError(
            f"unknown style '{name}'",
            fix="use one of: " + ", ".join(STYLES) + " (or '' to decide by noms)",
        ) from None


class Transform(Enum):
    """What happens to an entry's content on its way into the package."""

    NONE = "as is"
    GZIP = "gzip"  # primary-beam and mask FITS images (SPEC §4, cycle3 on)
    RAW_MS = "DATA column only"  # SPEC §4.2
    CALIBRATED_MS = "calibrated data as DATA"  # SPEC §4.2
    MANIFEST = "names rewritten to the delivered names"  # a pipeline manifest (SPEC §4.1)


TRANSFORMS: dict[str, Transform] = {
    "product/{name}.gz": Transform.GZIP,
    "{rel}.gz": Transform.GZIP,
    "raw/{name}": Transform.RAW_MS,
    "calibrated/{name}": Transform.CALIBRATED_MS,
}
"""Destinations that change what they receive; every other destination takes it as is."""


@dataclass(frozen=True)
class Rule:
    where: str  # "eb", "qa2" or "sb"
    kinds: frozenset[Kind]
    pattern: str  # regular expression matched against the whole name; {eb} = an EB UID
    dest: str | None  # template, NEVER, NOTES or PI_SCRIPT
    why: str  # what the entry is (shown in --dry-run and in warnings)
    when: str = ""  # a key of WHEN: the styles the rule applies to
    transform: Transform = Transform.NONE


F = frozenset({Kind.FILE})
T = frozenset({Kind.TABLE})
P = frozenset({Kind.PLOTS})
A = frozenset({Kind.ASDM})
ANY = frozenset(Kind) - {Kind.LINK}

_BACKUP = r".*\.last|.*~|.*\.bak|.*\.swp|#.*#|\..*"
_IMAGE = r".*\.(image|pb|mask|psf|residual|model|sumwt|weight|pbcor|flux|alpha|beta)(\..*)?"
_PB_OR_MASK = r".*(\.pb\.|\.mask\.).*fits|.*\.flux\.fits"
_NOTES = r".*\.imaging\.txt|.*notes.*\.txt"
_CHECKLIST = r"(?i).*checklist.*"
_EB_TEXT = r".*\.txt|.*\.csv|.*\.listobs|.*fluxscale|{eb}\..*"
_TP_MS = r".*\.ms\.(cal|bl|sd)(\..*)?|.*\.asap(\..*)?"

_COMMON_TAIL = (
    (F, _PB_OR_MASK, "product/{name}.gz", "primary beam or mask image", "compress"),
    (F, r".*\.fits(\.gz)?", "product/{name}", "FITS image", ""),
    (F, _NOTES, NOTES, "reducer's notes for the PI (go into the README)", ""),
    (F, r"allFluxes\.txt", "calibration/{name}", "flux table of the EBs", ""),
)


_PIPE_CALIBRATION = (
    r"antennapos\.csv|flux\.csv|.*\.cont\.dat|.*\.(aux)?caltables\.tgz|.*\.ms\.calapply\.txt"
    r"|.*\.auxcalapply\.txt|.*\.ms\.flagversions\.tgz|.*_flag(targets|tsys)?template\.txt"
    r"|.*\.auxproducts\.tgz"
)
PIPELINE_README = re.compile(r"(?i)readme.*")
"""The README a pipeline run exports: the header of the staged README (``qa2 stage``)."""
_PIPE_QA = r".*weblog\.tgz|.*\.weblog\.tar|.*\.qa[02]_report\..*|.*_aquareport\.xml"
_PIPE_SCRIPT = (
    r".*\.pprequest\.xml|PPR_.*\.xml|.*casa_pipescript\.py|.*casa_piperestorescript\.py"
    r"|scriptForImaging.*\.py|.*pipeline_manifest\.xml"  # the scriptForPI reads it from script/
)


_QA0 = r"{eb}\.qa0_report\..*"
_QA2_REPORT = r"(.*\.)?qa2_report\..*"
_PRODUCT_RENAME = r".*product_rename\.txt"


def _rules() -> tuple[Rule, ...]:
    eb = [
        (ANY, _BACKUP, NEVER, "CASA parameter file, editor backup or hidden file", ""),
        (A, r".*", NEVER, "ASDM raw data (the archive delivers it)", ""),
        (F, _CHECKLIST, "qa/{short}.checklist.txt", "EB checklist", ""),
        (T, r".*\.flagversions", NEVER, "flag versions of an MS", ""),
        (T, r".*\.ms", NEVER, "MS imported from the ASDM", ""),
        (T, r".*\.ms\.split", "raw/{name}", "a priori calibrated MS", "ms"),
        (T, r".*\.ms\.split", NEVER, "MS (not delivered in this style)", ""),
        (T, r".*\.ms\.split\.cal", "calibrated/{name}", "calibrated MS", "ms"),
        (T, r".*\.ms\.split\.cal", NEVER, "MS (not delivered in this style)", ""),
        (T, r".*\.mask", "product/{name}", "CASA mask image (a tgz from cycle 5)", "modern"),
        (T, _IMAGE, NEVER, "CASA image (only FITS exports are delivered)", ""),
        (T, _TP_MS, NEVER, "total-power MS (the scripts make it again)", "tp"),
        (T, r".*", "calibration/{uid}.calibration/{name}", "calibration table", ""),
        (P, r".*", "calibration/{uid}.calibration.plots/{name}", "plots", ""),
        (F, r".*\.py", "script/{name}", "script", ""),
        (F, r".*\.log", "log/{uid}__{name}", "EB log", ""),
        (F, _QA0, "qa/{name}", "the EB's QA0 report", ""),
        *_COMMON_TAIL,
        (F, r".*\.png", "calibration/{uid}.calibration.plots/{name}", "EB plot", ""),
        (F, _EB_TEXT, "calibration/{uid}.calibration/{name}", "EB text output", ""),
    ]
    qa2 = [
        (ANY, _BACKUP, NEVER, "editor backup or hidden file", ""),
        (F, r".*", "qa/{uid}__{name}", "QA2 report file", ""),
    ]
    sb = [
        (ANY, _BACKUP, NEVER, "CASA parameter file, editor backup or hidden file", ""),
        (A, r".*", NEVER, "ASDM raw data (the archive delivers it)", ""),
        (T, r".*\.flagversions", NEVER, "flag versions of an MS", ""),
        (T, r".*\.ms(\..*)?", NEVER, "MS at SB level (calibrated.ms, copies of EB MSes)", ""),
        (T, r".*\.mask", "product/{name}", "CASA mask image (a tgz from cycle 5)", "modern"),
        (T, _IMAGE, NEVER, "CASA image (only FITS exports are delivered)", ""),
        (F, _QA0, "qa/{name}", "an EB's QA0 report", ""),
        (ANY, r"{eb}\..*", NEVER, "copy of an EB's file (packaged from the EB)", ""),
        (F, _CHECKLIST, "qa/{name}", "checklist", ""),
        (F, _QA2_REPORT, "qa/{name}", "the SB's QA2 report", ""),
        (F, _PRODUCT_RENAME, "script/{name}", "how the products were renamed", ""),
        (F, r"scriptForPI\.py", PI_SCRIPT, "script for the PI", ""),
        (F, r".*\.py", "script/{name}", "script", ""),
        (F, r".*\.log", "log/{name}", "log", ""),
        *_COMMON_TAIL,
    ]
    # A pipeline run's products/ (SPEC §7).
    pipeline = [
        (ANY, _BACKUP, NEVER, "editor backup or hidden file", ""),
        (F, _PIPE_CALIBRATION, "calibration/{name}", "pipeline calibration product", ""),
        (F, r".*\.casa_commands\.log|casa-.*\.log", "log/{name}", "pipeline log", ""),
        (F, _PIPE_QA, "qa/{name}", "pipeline weblog or QA report", ""),
        (F, r".*scriptForPI\.py", PI_SCRIPT, "script for the PI", ""),
        (F, _PIPE_SCRIPT, "script/{name}", "pipeline script or processing request", ""),
        (F, PIPELINE_README.pattern, NEVER, "the pipeline's README (staged README header)", ""),
        *_COMMON_TAIL,
    ]
    # A staged package's delivery directories (calibration/, script/ ...): kept as staged.
    kept = [
        (ANY, _BACKUP, NEVER, "editor backup or hidden file", ""),
        (F, r"antennapos\.csv", "{rel}", "antenna positions", "cycle3"),
        (F, r"antennapos\.csv", NEVER, "antenna positions (delivered from cycle 3 on)", ""),
        (F, r"scriptForPI\.py|member\..*\.scriptForPI\.py", PI_SCRIPT, "script for PI", ""),
        (F, r"README|member\..*\.README\.txt", NEVER, "staged README (replaced by ours)", ""),
        (F, _PB_OR_MASK, "{rel}.gz", "primary beam or mask image", "compress"),
        (ANY, r".*", "{rel}", "pipeline product, kept where staging put it", ""),
    ]
    # What the scriptForPI restored under calibrated/ (working/, rawdata/, products/).
    restore = [
        (F, r".*\.fits(\.gz)?", "product/{name}", "FITS image", ""),
        (F, r"scriptForImaging.*\.py", "script/{name}", "imaging script", ""),
        (ANY, r".*", NEVER, "restored by the scriptForPI (the PI restores it again)", ""),
    ]
    # Deeper inside an EB directory (``X8c/notes/…``): as at SB level, but logs are the EB's.
    eb_nested = [(F, r".*\.log", "log/{uid}__{name}", "EB log", ""), *sb]
    tables = {
        "eb": eb,
        "qa2": qa2,
        "eb-nested": eb_nested,
        "sb": sb,
        "pipeline": pipeline,
        "kept": kept,
        "restore": restore,
    }
    return tuple(
        Rule(where, kinds, pattern, dest, why, when, TRANSFORMS.get(dest or "", Transform.NONE))
        for where, table in tables.items()
        for (kinds, pattern, dest, why, when) in table
    )


RULES: tuple[Rule, ...] = _rules()

# -- the modern naming (SPEC §4.1): applied to the destinations above, cycle 5 on ----------

_EB = r"(?P<eb>uid___[^/]+?)"

MODERN_BUNDLES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    # (older destination, the tgz it goes into, its path inside); {m} is member.<MOUS>,
    # {top} the SB-level directory the file came from (origpath's name at its top)
    (
        re.compile(rf"calibration/{_EB}\.calibration/(?P<rest>.+)"),
        "calibration/{eb}.calibration.tgz",
        "{eb}.calibration/{rest}",
    ),
    (
        re.compile(rf"calibration/{_EB}\.calibration\.plots/(?P<rest>.+)"),
        "calibration/{eb}.calibration.plots.tgz",
        "{eb}.calibration.plots/{rest}",
    ),
    (re.compile(rf"log/{_EB}__(?P<rest>.+)"), "log/{m}.{eb}.log.tgz", "{m}.{eb}.log/{rest}"),
    (re.compile(r"log/(?P<rest>[^/]+)"), "log/{m}.{top}.log.tgz", "{m}.{top}.log/{rest}"),
    (re.compile(r"product/(?P<rest>[^/]+\.mask)"), "product/{m}.{rest}.tgz", "{rest}"),
)

MODERN_KEEPS = re.compile(r"uid___A\d{3}_X[0-9A-Za-z]+_X[0-9A-Za-z]+\.")
"""Names that belong to one EB (``<EB>.ms.scriptForCalibration.py``, ``<EB>.qa0_report.pdf``,
``<EB>.ms.flagversions.tgz``): delivered unprefixed.  ``<EB>__qa2_part1.png`` is prefixed."""

MODERN_RENAMES = ((".flux.fits.gz", ".pb.fits.gz"),)
"""Endings delivered under their modern name: CASA's older ``.flux`` primary beam."""


# -- the package's own names, by generation: directories, README, scriptForPI, tickets, tars --

LEVELS = (("science_goal", "sg_ouss_id"), ("group", "group_ouss_id"), ("member", "member_ouss_id"))
"""The science goal, group and member directories: ``<prefix>.<UID>``, or the placeholder."""

README_NAMES = {"modern": "member.{mous}.README.txt", "older": "README"}
"""The member's README: Cycle 5 on, and before."""

PI_SCRIPT_NAMES = {"prefixed": "{member}.scriptForPI.py", "plain": "scriptForPI.py"}
"""The scriptForPI in script/: prefixed from Cycle 5 on (and as the pipeline stages it) when
the member directory carries the MOUS UID; plain before, as Cycle-4 deliveries have it."""

TICKET_NAMES = ("{stem}.ticket.zip", "{stem}.ticket.tar")
"""Beside packpath, for the review ticket; ``stem`` is the project or ``<project>.<SB name>``."""

REVIEW_NAMES = ("review.html", "{stem}.review.html")
"""The DRM's review page: inside the ticket files, and beside them (images embedded)."""

CHUNK_NAMES = {
    "numbered": "{project}_{tag}_{n}_of_{total}.tar",
    "auxiliary": "{project}_{tag}_auxiliary.tar",
    "list": "{project}_{tag}.md5sums",
}
"""The tars of a delivery as the archive names them (``tag``: the MOUS UID, or a date)."""


WHEN: dict[str, Callable[[Style], bool]] = {
    "": lambda style: True,
    "ms": lambda style: not style.noms,
    "compress": lambda style: style.compress_pb,
    "cycle3": lambda style: style.cycle is not None and style.cycle >= 3,
    "modern": lambda style: style.modern,
    "tp": lambda style: style.tp,
}
"""The styles a rule applies to, by its ``when``."""


@dataclass(frozen=True)
class Match:
    dest: str | None
    why: str
    transform: Transform


class Classifier:
    """Applies RULES for one reduction (its EB UIDs fill ``{eb}``) and one style."""

    def __init__(self, style: Style, eb_uids: tuple[str, ...]):
        eb = "(?:" + "|".join(re.escape(u) for u in eb_uids) + ")" if eb_uids else "(?!)"
        self._rules = [
            (rule, re.compile(rule.pattern.replace("{eb}", eb)))
            for rule in RULES
            if WHEN[rule.when](style)
        ]

    def classify(self, where: str, kind: Kind, name: str) -> Match | None:
        for rule, pattern in self._rules:
            if rule.where == where and kind in rule.kinds and pattern.fullmatch(name):
                return Match(rule.dest, rule.why, rule.transform)
        return None
