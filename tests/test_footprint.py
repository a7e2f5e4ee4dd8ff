"""Nothing is written outside the target a command was given (SPEC §13): every file,
directory, link, rename and removal that a command's processes make, seen by strace, is
inside its target.  The exceptions, named in ``outside``: the MeasurementSet shadows in
``$TMPDIR``, or /dev/shm when none is named (see ``almaqa2.data.ms``), which a run
removes; the file Python's tempfile makes and removes at once to see that ``$TMPDIR`` can
be written; and matplotlib's own per-user configuration and font cache, made once when a
review page's plot is first drawn.  Not even a name that lives an instant:
multiprocessing's locks and shared values are files in /dev/shm, and a run killed in that
instant leaves them there."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from almaqa2.testing import measurementsets as example_ms
from test_batch import _table, _write_plan

from conftest import QA2 as _QA2
from conftest import Case

QA2 = [*_QA2, "-q"]
_TRACED = (
    "open,openat,creat,mkdir,mkdirat,mknodat,link,linkat,symlink,symlinkat,"
    "rename,renameat,renameat2,unlink,unlinkat,rmdir"
)
_CALL = re.compile(r"^(\w+)\((.*)\) += (-?\d+)")
_PATH = re.compile(r'(?:(?:AT_FDCWD|\d+)<([^>]*)>, )?"([^"]*)"')
_WRITING = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")
MEMORY_SHADOWS = "/dev/shm/almaqa2-ms-"


def changed(
    argv: list[str], tmp: Path, codes: tuple[int, ...] = (0,), temp: bool = True
) -> set[str]:
    """The paths that ``argv``'s processes, run in ``tmp``, created, opened to write,
    linked, renamed or removed (what succeeded), absolute, as strace saw them; the
    command must exit with one of ``codes``.  ``temp``: $TMPDIR is ``tmp/tmp`` (else no
    temporary directory is named)."""
    log = tmp / "strace" / "call"
    log.parent.mkdir(parents=True, exist_ok=True)
    for made in ("tmp", "cache"):
        (tmp / made).mkdir(exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("TMPDIR", "TEMP", "TMP")},
        **({"TMPDIR": str(tmp / "tmp")} if temp else {}),
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    strace = ["strace", "-ff", "-qq", "-y", "-e", f"trace={_TRACED}", "-o", str(log)]
    done = subprocess.run([*strace, *argv], cwd=tmp, env=env, capture_output=True, text=True)
    assert done.returncode in codes, done.stderr
    paths: set[str] = set()
    for one in log.parent.iterdir():
        for line in one.read_text(errors="replace").splitlines():
            if (call := _CALL.match(line)) is None or int(call[3]) < 0:
                continue
            name, args = call[1], call[2]
            if name in ("open", "openat") and not any(flag in args for flag in _WRITING):
                continue
            found = [os.path.join(d or str(tmp), p) for d, p in _PATH.findall(args)]
            if name.startswith("symlink"):
                found = found[-1:]  # (the first is what the link says, not a path used)
            paths.update(os.path.normpath(p) for p in found)
        one.unlink()
    return paths


def outside(paths: set[str], tmp: Path, *targets: Path | str) -> list[str]:
    """Those of ``paths`` in none of ``targets`` (a Path: it and what is under it; a
    string: the paths that start with it), nor /dev/null, an MS shadow (in ``$TMPDIR``, or
    /dev/shm when no temporary directory is named), the file Python's tempfile makes and
    removes once to see that ``$TMPDIR`` can be written, or matplotlib's configuration and
    cache."""
    allowed = [
        f"{tmp}/tmp/almaqa2-ms-",
        MEMORY_SHADOWS,
        f"{os.environ['XDG_CONFIG_HOME']}/matplotlib",
        f"{tmp}/cache/matplotlib",
    ]
    for target in targets:
        allowed += [target] if isinstance(target, str) else [f"{target}/"]
    exactly = {"/dev/null", *(str(t) for t in targets)}
    probe = re.compile(rf"{re.escape(str(tmp))}/tmp/[a-z0-9_]{{8}}")
    return sorted(
        p
        for p in paths
        if not p.startswith(tuple(allowed)) and p not in exactly and not probe.fullmatch(p)
    )


def test_package_tarsplit_untar_and_the_readers_write_only_in_their_targets(
    case229: Case, tmp_path: Path
) -> None:
    packpath = case229.packpath
    argv, _ = case229.commands("copy")
    made = changed([*QA2, *argv], tmp_path)
    assert str(packpath) in made, "strace saw nothing made"  # (the staging renamed)
    assert f"{packpath.parent}/.{packpath.name}.almaqa2.lock" in made
    assert any(p.startswith(f"{tmp_path}/tmp/almaqa2-ms-") for p in made)  # MSes were read
    # the target: packpath, its lock and staging directory, and its ticket files beside it
    beside = f"{packpath.parent}/.{packpath.name}.almaqa2"
    assert outside(made, tmp_path, packpath, beside, f"{packpath}.") == []

    chunks = tmp_path / "chunks"
    chunks.mkdir()
    argv = ["tarsplit", str(packpath), "--out", str(chunks), "--max-size", "40K"]
    assert outside(changed([*QA2, *argv], tmp_path), tmp_path, chunks) == []
    assert len(list(chunks.glob("*.tar"))) > 1

    for what in (packpath, chunks):  # commands that only read
        for command in ("verify", "inspect"):
            assert outside(changed([*QA2, command, str(what)], tmp_path), tmp_path) == []
    checked = changed([*QA2, "check", str(case229.origpath)], tmp_path, codes=(0, 1))
    assert outside(checked, tmp_path) == []

    unpacked = tmp_path / "unpacked"
    argv = ["untar", str(chunks), "--out", str(unpacked)]
    assert outside(changed([*QA2, *argv], tmp_path), tmp_path, unpacked) == []
    assert (unpacked / packpath.name / "manifest.md5").is_file()


def test_the_ms_shadows_are_made_in_memory_unless_a_temporary_directory_is_named(
    case229: Case, tmp_path: Path
) -> None:
    """With no $TMPDIR (TEMP, TMP), the shadows that casacore reads the MSes through are
    made in /dev/shm: on a disk each of their entries would be an inode written through
    the journal (``ms._shadow_home``).  None is left, and nothing else is made outside."""
    argv, _ = case229.commands("copy")
    made = changed([*QA2, *argv], tmp_path, temp=False)
    shadows = {p.split("/")[3] for p in made if p.startswith(MEMORY_SHADOWS)}
    assert shadows, "the MSes were read through shadows in /dev/shm"
    assert not any(p.startswith(f"{tmp_path}/tmp/") for p in made)
    assert not [s for s in shadows if os.path.lexists(f"/dev/shm/{s}")]
    beside = f"{case229.packpath.parent}/.{case229.packpath.name}.almaqa2"
    assert outside(made, tmp_path, case229.packpath, beside, f"{case229.packpath}.") == []


def test_split_writes_only_in_its_out_directory(tmp_path: Path) -> None:
    """Two MSes, one a link into working/ as the restore leaves it: their parts are made
    by both processes, and all is written in --out."""
    calibrated = tmp_path / "calibrated"
    ebs = ("uid___A002_Xb00001_X1a1", "uid___A002_Xb00002_X2b2")
    (calibrated / "working").mkdir(parents=True)
    for eb, where in zip(ebs, (calibrated, calibrated / "working"), strict=True):
        example_ms.write_ms(where / f"{eb}.ms", eb, "2019.1.00001.S", nchan=16, times=5,
                            layout=example_ms.ALMA)  # fmt: skip
    (calibrated / f"{ebs[1]}.ms").symlink_to(f"working/{ebs[1]}.ms")
    into = tmp_path / "science"
    into.mkdir()
    made = changed([*QA2, "split", str(calibrated), "--out", str(into)], tmp_path)
    for eb in ebs:
        assert f"{into}/{eb}.ms.split.cal.source" in made  # (renamed from its staging)
    assert outside(made, tmp_path, into) == []


def test_a_batch_on_this_machine_writes_only_in_its_out_directory_and_beside_its_plan(
    tmp_path: Path,
) -> None:
    """A cluster of this machine, two workers: its packages, chunks and md5s go to the
    PLAN's out, and the ledger, lock and Dask's scratch files beside the PLAN; no name
    in /dev/shm (a nanny's queues) or $TMPDIR (Dask's scratch), and no scratch left."""
    table = _table("project229", tmp_path / "reduction")
    out = tmp_path / "out"
    (tmp_path / "plans").mkdir()
    plan = _write_plan(tmp_path / "plans" / "cycle.toml", [("mous", table)], out)
    argv = ["batch", str(plan), "--workers", "2", "--steps", "package,tarsplit,verify"]
    made = changed([*QA2, *argv], tmp_path)
    scratch = f"{plan.parent}/.cycle.toml.almaqa2-dask"
    assert f"{scratch}/dask-scratch-space" in made  # the scheduler's and workers' files
    assert any(p.endswith(".tar") for p in made)  # the steps ran
    beside = (f"{plan.parent}/cycle.ledger.jsonl", f"{plan.parent}/.cycle.toml.almaqa2.lock")
    assert outside(made, tmp_path, out, Path(scratch), scratch, *beside) == []
    assert sorted(p.name for p in plan.parent.iterdir()) == ["cycle.ledger.jsonl", "cycle.toml"]
