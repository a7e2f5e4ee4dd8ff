"""The batch PLAN: a TOML file of ``[defaults]`` and one ``[[mous]]`` table per reduction
to package, or ``[[run]]`` per pipeline run to stage.  Reading it is pure: every table is
checked before anything starts, and a bad one is one sentence naming the table and key.

Keys are the options of ``qa2 package``, ``stage`` and ``tarsplit`` without their dashes'
meaning changed (``max-size``, ``pi-script``, ``sb-name``...).  Relative paths are read
from the PLAN's own directory, so a PLAN travels with the reductions it lists.
"""

from __future__ import annotations

import collections
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from almaqa2.errors import InputError
from almaqa2.package.rules import MODES, PLACEHOLDER_MODES, STYLES
from almaqa2.sizes import parse_size
from almaqa2.uid import PROJECT_CODE, UID_FS, to_fs

STEPS = ("package", "tarsplit", "verify")
"""What a batch can do for each MOUS, in this order (``package`` stages a ``[[run]]``)."""

PLACEHOLDER = "FILL-IN"
"""What ``--init`` writes where only the reducer knows the value."""

_PATHS = ("origpath", "packpath", "out", "readme", "pi-script", "pipe-readme", "chunks")
_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "origpath": str,
    "packpath": str,
    "project": str,
    "out": str,
    "chunks": str,
    "readme": str,
    "mode": str,
    "style": str,
    "noms": bool,
    "strict": bool,
    "pi-script": str,
    "pipe-readme": str,
    "sg": str,
    "gous": str,
    "mous": str,
    "sb-name": str,
    "max-size": (str, int),
    "auxiliary": bool,
    "date": str,
}
"""Every key a table may hold, with its TOML type; ``[defaults]`` holds any but the
identity of a reduction (name, origpath, packpath)."""
_OWN = ("name", "origpath", "packpath")
_RUN_ONLY = ("pipe-readme",)
_MOUS_ONLY = ("readme", "style", "noms", "strict", "sg", "gous", "mous", "sb-name")


@dataclass(frozen=True)
class Job:
    """One MOUS of the batch: what to package (or stage) where, and how to split it."""

    name: str  # its key in the ledger: unique in the PLAN
    kind: str  # "mous" (qa2 package) or "run" (qa2 stage)
    origpath: Path
    packpath: Path
    settings: dict[str, Any] = field(default_factory=dict)  # the table's other keys

    @property
    def mode(self) -> str:
        return str(self.settings.get("mode", "copy" if self.kind == "run" else "fake"))

    @property
    def chunks(self) -> Path:
        """Where ``tarsplit`` writes the chunks: ``chunks``, else beside the package."""
        given = self.settings.get("chunks")
        return Path(given) if given else self.packpath.parent

    def folders(self, steps: tuple[str, ...]) -> list[Path]:
        """The directories a run of ``steps`` writes into: the package's (``<out>/<name>``)
        and the chunks'.  A run makes them if missing, one level, as ``qa2 package``
        does: their parents must be there (``check_places``)."""
        wanted = [self.packpath.parent] if "package" in steps else []
        return wanted + ([self.chunks] if "tarsplit" in steps else [])

    def path(self, key: str) -> Path | None:
        value = self.settings.get(key)
        return Path(value) if value else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "origpath": str(self.origpath),
            "packpath": str(self.packpath),
            **self.settings,
        }


@dataclass(frozen=True)
class BatchPlan:
    path: Path
    jobs: tuple[Job, ...]

    @property
    def ledger(self) -> Path:
        """The ledger lives beside the PLAN: ``batch.toml`` -> ``batch.ledger.jsonl``."""
        return self.path.with_name(f"{self.path.stem}.ledger.jsonl")


def _bad(where: str, what: str, plan: Path, fix: str) -> InputError:
    return InputError(f"{where}: {what}", plan, fix=fix)


def _checked(table: dict[str, Any], where: str, plan: Path, allowed: tuple[str, ...]) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise _bad(where, f"unknown key '{key}'", plan, "use one of: " + ", ".join(allowed))
        kind = _KEYS[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            wanted = "a string" if kind is str else "true or false" if kind is bool else "a size"
            raise _bad(where, f"'{key}' must be {wanted}", plan, f"write {key} = ... as {wanted}")
        if value == PLACEHOLDER:
            raise _bad(where, f"'{key}' is still {PLACEHOLDER}", plan, "fill it in")
    if "mode" in table and table["mode"] not in MODES:
        raise _bad(
            where, f"unknown mode '{table['mode']}'", plan, "use one of: " + ", ".join(MODES)
        )
    if "style" in table and table["style"] not in STYLES:
        raise _bad(
            where, f"unknown style '{table['style']}'", plan, "qa2 package --help lists them"
        )
    if "max-size" in table:
        try:
            parse_size(str(table["max-size"]))
        except InputError as exc:
            raise _bad(where, f"'max-size' {exc.what}", plan, exc.fix or "") from None


def _absolute(table: dict[str, Any], base: Path) -> dict[str, Any]:
    return {
        k: os.path.normpath(base / os.path.expanduser(v)) if k in _PATHS else v
        for k, v in table.items()
    }


def load(path: Path) -> BatchPlan:
    """Read and check the PLAN at ``path`` (InputError naming the table and key)."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("the batch PLAN was not found", path, fix="give its path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"the batch PLAN cannot be read ({exc})", path, fix="check it") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"the batch PLAN is not TOML ({exc})", path, fix="correct it") from None
    unknown = sorted(set(data) - {"defaults", "mous", "run"})
    if unknown:
        raise _bad(f"[{unknown[0]}]", "unknown table", path, "use [defaults], [[mous]], [[run]]")
    base = path.parent.resolve()
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise _bad("defaults", "must be a table", path, "write it as [defaults]")
    _checked(defaults, "[defaults]", path, tuple(k for k in _KEYS if k not in _OWN))
    jobs: list[Job] = []
    for kind in ("mous", "run"):
        tables = data.get(kind, [])
        if not isinstance(tables, list):
            raise _bad(kind, "must be an array of tables", path, f"write each as [[{kind}]]")
        for n, table in enumerate(tables, 1):
            where = f"[[{kind}]] #{n}"
            other = _MOUS_ONLY if kind == "run" else _RUN_ONLY
            _checked(table, where, path, tuple(k for k in _KEYS if k not in other))
            inherited = {k: v for k, v in defaults.items() if k not in other}
            jobs.append(_job(kind, _absolute({**inherited, **table}, base), where, path))
    if not jobs:
        raise InputError("the batch PLAN lists no [[mous]] or [[run]]", path, fix="add some")
    _unique(jobs, path)
    _apart(jobs, path)
    return BatchPlan(path.resolve(), tuple(jobs))


def _job(kind: str, table: dict[str, Any], where: str, plan: Path) -> Job:
    if "origpath" not in table:
        raise _bad(where, "no 'origpath'", plan, "give the reduction's (or the run's) directory")
    if kind == "mous" and "readme" not in table:
        raise _bad(where, "no 'readme'", plan, "give the README header (here or in [defaults])")
    origpath = Path(table.pop("origpath"))
    name = table.pop("name", None) or _name_of(origpath, table.get("mous"))
    packpath = table.pop("packpath", None)
    if packpath is None:
        project, out = table.pop("project", None), table.get("out")
        if project is None or out is None:
            raise _bad(
                where, "no 'packpath', nor 'project' and 'out'", plan,
                "give packpath, or project (the project code) and out (here or in [defaults])",
            )  # fmt: skip
        if not PROJECT_CODE.fullmatch(project):
            raise _bad(where, f"'project' {project!r} is not a project code", plan,
                       "write it like 2019.1.01234.S")  # fmt: skip
        packpath = str(Path(out) / name / project)
    table.pop("project", None)
    table.pop("out", None)
    return Job(name, kind, origpath, Path(packpath), table)


def _name_of(origpath: Path, mous: str | None) -> str:
    """A job's default name: its MOUS UID (as in file names), else its directory's name."""
    if mous:
        return to_fs(mous)
    found = UID_FS.search(origpath.name)
    return found.group(0) if found else origpath.name


def _unique(jobs: list[Job], plan: Path) -> None:
    seen: dict[str, Job] = {}
    for job in jobs:
        if job.name in seen:
            raise _bad(
                f"name '{job.name}'", "two tables have it", plan,
                "give each [[mous]] or [[run]] its own name = ...",
            )  # fmt: skip
        seen[job.name] = job
    packpaths = collections.Counter(job.packpath for job in jobs)
    for job in jobs:
        if packpaths[job.packpath] > 1:
            raise _bad(f"[[{job.kind}]] {job.name}", f"packpath {job.packpath} is not its own",
                       plan, "give each reduction its own packpath or name")  # fmt: skip


def _apart(jobs: list[Job], plan: Path) -> None:
    """What a table writes (its package, its chunks) overlaps no reduction of the PLAN,
    which is never written, and no other table's package, which holds only what its own
    run puts there (the paths as given: each command checks its own again as it runs).
    Each path's parents are looked up, not every pair compared: a PLAN may list 1,000."""
    kept = {
        "the reduction": {job.origpath: job for job in jobs},
        "the package": {job.packpath: job for job in jobs},
    }
    for job in jobs:
        for what, target in (("packpath", job.packpath), ("chunks", job.chunks)):
            for place in (target, *target.parents):
                for whose, paths in kept.items():
                    other = paths.get(place)
                    if other is not None and (other is not job or whose == "the reduction"):
                        raise _overlap(plan, job, what, target, whose, other, place)
    for whose, paths in kept.items():  # a packpath holding a reduction or another package
        for path, other in paths.items():
            for place in path.parents:
                if (holder := kept["the package"].get(place)) is not None:
                    raise _overlap(plan, holder, "packpath", place, whose, other, path)


def _overlap(
    plan: Path, job: Job, what: str, target: Path, whose: str, other: Job, path: Path
) -> InputError:
    return _bad(
        f"[[{job.kind}]] {job.name}",
        f"its {what} {target} overlaps {whose} of [[{other.kind}]] {other.name}, {path}",
        plan,
        "write packages and chunks outside every reduction and every other package",
    )


def check_steps(batch: BatchPlan, steps: tuple[str, ...]) -> None:
    """A package of placeholders is never split or verified: a PLAN asking that of one
    (fake is a [[mous]]'s default mode) is refused before anything starts."""
    after = [step for step in steps if step != "package"]
    for job in batch.jobs if after else ():
        if job.mode in PLACEHOLDER_MODES:
            raise _bad(
                f"[[{job.kind}]] {job.name}",
                f"its mode is {job.mode}, whose package holds empty placeholders and is not"
                f" {' or '.join('split' if s == 'tarsplit' else 'verified' for s in after)}",
                batch.path,
                'give mode = "copy" or "hard" (in [defaults] for every table), or leave'
                f" {' and '.join(after)} out of --steps",
            )


def check_places(batch: BatchPlan, steps: tuple[str, ...]) -> None:
    """The directory each table's folders go in is there: a PLAN whose ``out`` is missing
    or mistyped is refused before anything starts, not failed once per table."""
    for job in batch.jobs:
        for folder in job.folders(steps):
            if not folder.is_dir() and not folder.parent.is_dir():
                raise _bad(
                    f"[[{job.kind}]] {job.name}",
                    f"{folder.parent}, where it writes {folder.name}/, is not a directory",
                    batch.path,
                    "create it, or correct the PLAN's out (or packpath, chunks)",
                )


# -- qa2 batch --init ----------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A reduction (``mous``) or pipeline run (``run``) found under a directory."""

    kind: str
    path: Path
    name: str
    project: str | None
    mous: str | None


def discover(top: Path, depth: int = 4) -> list[Found]:
    """The reductions and pipeline runs under ``top`` as the layouts recognise them (read
    only), breadth first to ``depth`` levels.  A directory is tried when its names, or its
    subdirectories', show an EB; a recognised one is not looked into further."""
    found: list[Found] = []
    level = [top]
    for _ in range(depth + 1):
        following: list[Path] = []
        for path in level:
            recognised = _recognised(path)
            if recognised is not None:
                found.append(recognised)
            else:
                following += _subdirs(path)
        level = following
    return found


def _recognised(path: Path) -> Found | None:
    from almaqa2.package.layouts import recognise
    from almaqa2.package.layouts.pipeline import looks_like_run

    if looks_like_run(path):
        kind = "run"
    elif any(_marks_an_eb(p) for d in (path, *_subdirs(path)) for p in _names(d)):
        kind = "mous"
    else:
        return None
    try:
        reduction = recognise(path)
    except InputError:
        return None
    named = (PROJECT_CODE.match(part) for part in reversed(path.parts))  # 2017.1.01185.S_uid...
    project = next((found.group(0) for found in named if found), None)
    return Found(kind, path, _name_of(path, reduction.mous), project, reduction.mous)


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _subdirs(folder: Path) -> list[Path]:
    """Subdirectories worth looking into: not tables, ASDMs or links."""
    return sorted(
        folder / name
        for name in _names(folder)
        if (folder / name).is_dir()
        and not (folder / name).is_symlink()
        and not (folder / name / "table.dat").exists()
        and not (folder / name / "ASDM.xml").exists()
    )


def _marks_an_eb(name: str) -> bool:
    """A name only an EB's data has: its ASDM, its MSes, its calibration script."""
    if UID_FS.fullmatch(name):
        return True
    return name.startswith("uid___") and name.endswith(_EB_SUFFIXES)


_EB_SUFFIXES = (".ms", ".ms.split", ".ms.split.cal", ".scriptForCalibration.py", ".ms.calapply.txt")


def init_text(found: list[Found], top: Path) -> str:
    """A PLAN listing ``found``, for the reducer to check and complete."""
    lines = [
        f"# qa2 batch PLAN: the reductions found under {top}.",
        f"# Fill in every {PLACEHOLDER}; relative paths are read from this file's directory.",
        "# Keys: those of qa2 package / stage / tarsplit (max-size, pi-script, sb-name...).",
        "",
        "[defaults]",
        f"out = {json.dumps(PLACEHOLDER)}  # packages go to <out>/<name>/<project code>",
        f"readme = {json.dumps(PLACEHOLDER)}  # the README header (qa2 readme-template)",
        'mode = "copy"',
        'max-size = "10G"',
    ]
    for item in found:
        lines += ["", f"[[{item.kind}]]", f"name = {json.dumps(item.name)}"]
        lines.append(f"origpath = {json.dumps(str(item.path))}")
        lines.append(f"project = {json.dumps(item.project or PLACEHOLDER)}")
        if item.kind == "mous" and item.mous is None:
            lines.append(f"# mous = {json.dumps('uid://A001/X.../X...')}  # if it has one")
    return "\n".join(lines) + "\n"
