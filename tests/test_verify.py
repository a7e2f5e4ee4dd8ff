"""``qa2 verify``: every damage to a package or its chunks is found, all in one run, by path;
a clean package or set of chunks passes."""

from __future__ import annotations

import faulthandler
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from almaqa2 import forked, manifest, md5pair
from almaqa2.cli import main
from almaqa2.transfer import package_hashes, tarread, verify

P = "2013.1.00123.S"  # the nrao case's project
SET = f"{P}_uid___A001_X13e_X1fe"


@pytest.fixture
def pack(nrao_split: Path, tmp_path: Path) -> Path:
    copy = tmp_path / P
    shutil.copytree(nrao_split / "out" / P, copy)
    return copy


@pytest.fixture
def chunks(nrao_split: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(nrao_split / "chunks", tmp_path / "chunks"))


def _verify(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["verify", "--json", *map(str, paths)])
    return code, json.loads(capsys.readouterr().out)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _members(chunk: Path) -> list[str]:
    listed = subprocess.run(["tar", "tf", str(chunk)], capture_output=True, text=True, check=True)
    return [n for n in listed.stdout.splitlines() if not n.endswith("/")]


def test_a_clean_package_passes(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _verify(capsys, pack)
    assert code == 0 and report["ok"] and report["problems"] == []
    files = [p for p in pack.rglob("*") if p.is_file() and p.name != "manifest.md5"]
    assert report["what"] == "package" and report["checked"] == len(files) > 20
    assert main(["verify", str(pack)]) == 0
    assert "OK" in capsys.readouterr().out


def test_every_damage_to_a_package_is_reported_by_path(
    pack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = dict(
        reversed(line.split("  ", 1)) for line in (pack / "manifest.md5").read_text().splitlines()
    )
    member = pack / "sg_ouss_id/group_ouss_id/member.uid___A001_X13e_X1fe"
    flipped, truncated, removed = sorted(p for p in member.rglob("*") if p.is_file())[:3]
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    with open(truncated, "r+b") as f:
        f.truncate(truncated.stat().st_size // 2)
    removed.unlink()
    (member / "qa" / "stray.txt").write_text("not in the manifest\n")
    (member / "qa" / "stray.link").symlink_to("/etc/passwd")
    os.mkfifo(member / "qa" / "stray.fifo")

    def rel(path: Path) -> str:
        return path.relative_to(pack.parent).as_posix()

    code, report = _verify(capsys, pack)
    assert code == 1 and not report["ok"]
    for problem in report["problems"]:  # the envelope's sentence, then the details
        assert problem.pop("text").startswith(f"{problem['kind']}: {problem['path']}")
    assert sorted(report["problems"], key=lambda p: p["path"]) == sorted(
        [
            {"kind": "corrupt", "path": rel(flipped), "expected": listed[rel(flipped)],
             "found": _md5(flipped)},
            {"kind": "corrupt", "path": rel(truncated), "expected": listed[rel(truncated)],
             "found": _md5(truncated)},
            {"kind": "missing", "path": rel(removed), "expected": listed[rel(removed)],
             "found": None},
            {"kind": "extra", "path": rel(member / "qa" / "stray.txt"), "expected": None,
             "found": "a file"},
            {"kind": "extra", "path": rel(member / "qa" / "stray.link"), "expected": None,
             "found": "a symbolic link"},
            {"kind": "extra", "path": rel(member / "qa" / "stray.fifo"), "expected": None,
             "found": "a pipe, socket or device"},
        ],
        key=lambda p: str(p["path"]),
    )  # fmt: skip
    assert main(["verify", str(pack)]) == 1
    text = " ".join(capsys.readouterr().out.split())
    for path in (flipped, truncated, removed):
        assert rel(path).split("/")[-1] in text
    assert "6 problem(s)" in text


def test_clean_chunks_pass_as_a_directory_or_as_files(
    chunks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _verify(capsys, chunks)
    assert code == 0 and report["what"] == "chunks" and report["ok"]
    tars = sorted(chunks.glob("*.tar"))
    assert len(report["paths"]) == len(tars) > 2
    assert report["checked"] == len(tars) + sum(len(_members(t)) for t in tars)
    assert _verify(capsys, *tars)[0] == 0


def test_every_damage_to_chunks_is_reported_in_one_run(
    chunks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tars = sorted(chunks.glob("*.tar"))
    lost, damaged, cut = tars[1], tars[2], tars[3]
    lost_files = _members(lost)
    expected_lost = (chunks / f"{lost.name}.md5sum").read_text().split()[0]
    lost.unlink()
    listed = {
        name: digest
        for digest, name in (line.split("  ", 1) for line in _members_manifest(tars[0]))
    }
    expected_chunk = (chunks / f"{damaged.name}.md5sum").read_text().split()[0]
    with tarfile.open(damaged) as tar:
        inside = next(m.name for m in tar if m.size > 0)
    _flip_in_member(damaged, inside)
    expected_cut = (chunks / f"{cut.name}.md5sum").read_text().split()[0]
    cut_files = _members(cut)
    with open(cut, "r+b") as f:
        f.truncate(512)  # the first header survives, no file whole

    code, report = _verify(capsys, chunks)
    assert code == 1
    problems = {(p["kind"], p["path"]): p for p in report["problems"]}
    assert problems[("missing", str(lost))]["expected"] == expected_lost
    assert problems[("corrupt", str(damaged))]["expected"] == expected_chunk
    assert problems[("corrupt", str(damaged))]["found"] == _md5(damaged)
    assert problems[("corrupt", inside)]["expected"] == listed[inside]
    assert problems[("corrupt", str(cut))]["expected"] == expected_cut
    for name in lost_files + cut_files:
        assert ("missing", name) in problems, name
    assert len(problems) == 4 + len(lost_files) + len(cut_files)


@pytest.mark.parametrize("wrong", ["list", "own"])
def test_a_chunk_must_match_both_md5_files(
    chunks: Path, capsys: pytest.CaptureFixture[str], wrong: str
) -> None:
    """The list (``.md5sums``) and a chunk's own ``.md5sum`` disagree: the chunk is
    reported, as ``md5sum -c`` of the wrong file reports it.  The chunk's own file
    overrode the list, and verify said OK where ``md5sum -c`` of the list failed."""
    chunk = sorted(chunks.glob("*.tar"))[1]
    true = _md5(chunk)
    false = ("0" if true[0] != "0" else "1") + true[1:]
    md5_file = (
        next(chunks.glob("*.md5sums")) if wrong == "list" else chunks / f"{chunk.name}.md5sum"
    )
    md5_file.write_text(md5_file.read_text().replace(true, false))
    code, report = _verify(capsys, chunks)
    assert code == 1
    assert [(p["kind"], p["path"], p["expected"], p["found"]) for p in report["problems"]] == [
        ("corrupt", str(chunk), false, true)
    ]
    checked = subprocess.run(["md5sum", "-c", md5_file.name], cwd=chunks, capture_output=True)
    assert checked.returncode == 1 and f"{chunk.name}: FAILED" in checked.stdout.decode()


def _members_manifest(first: Path) -> list[str]:
    shown = subprocess.run(
        ["tar", "xOf", str(first), f"{P}/manifest.md5"], capture_output=True, text=True, check=True
    )
    return shown.stdout.splitlines()


def _flip_in_member(chunk: Path, member: str) -> None:
    """Flip one byte of ``member``'s data inside the tar (the header stays valid)."""
    with tarfile.open(chunk) as tar:
        offset = tar.getmember(member).offset_data
    with open(chunk, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize("may_fork", [True, False])
def test_several_chunks_are_read_at_once_each_hashed_whole_with_its_members(
    chunks: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, may_fork: bool
) -> None:
    """Issue 20: the chunks of a set are read by helpers, one per core, each reading its
    share at once, a chunk's md5 and its members' from one pass, all hashed together
    (``md5pair``); a process that may not fork (a batch worker) reads them itself.  Either
    way a member damaged in a middle chunk is found, the chunk's md5 is what hashlib says,
    every file is checked, and the progress told comes to the chunks' bytes."""
    monkeypatch.setattr(forked, "may_fork", lambda: may_fork)
    monkeypatch.setattr(verify, "_WORTH_HELPERS", 0)  # (a few MB here: too few to fork for)
    tars = sorted(chunks.glob("*.tar"))
    damaged = tars[len(tars) // 2]
    with tarfile.open(damaged) as tar:
        inside = next(m.name for m in tar if m.size > 0)
    _flip_in_member(damaged, inside)
    caplog.set_level(logging.DEBUG, logger="almaqa2.transfer.verify")

    told: list[tuple[int, int]] = []
    report = verify.check_chunks(
        verify.find_chunks([chunks]), lambda done, total: told.append((done, total))
    )

    logged = (r.getMessage() for r in caplog.records)
    said = (re.fullmatch(r"(.+): read at once by process (\d+)", text) for text in logged)
    groups = {int(found[2]): found[1].split() for found in said if found}
    readers = {name: pid for pid, names in groups.items() for name in names}
    if may_fork:
        assert sorted(readers) == [t.name for t in tars]
        assert os.getpid() not in readers.values()
        cores = min(len(os.sched_getaffinity(0)), verify._AT_ONCE)
        assert len(groups) == min(cores, len(tars))  # a helper per core
        together = any(len(names) > 1 for names in groups.values())
        assert together == (len(tars) > cores)  # more chunks than cores: some read at once
    else:
        assert groups == {}
    problems = {(p.kind, p.path): p for p in report.problems}
    assert len(problems) == 2
    assert problems[("corrupt", str(damaged))].found == _md5(damaged)
    assert problems[("corrupt", inside)].found != problems[("corrupt", inside)].expected
    assert report.checked == len(tars) + sum(len(_members(t)) for t in tars)
    whole = sum(t.stat().st_size for t in tars)
    assert told[-1] == (whole, whole)  # the progress, told as the chunks are read
    assert [done for done, _ in told] == sorted(done for done, _ in told)


@pytest.mark.parametrize("lanes", [8, 0])
def test_chunks_are_shared_so_that_the_helpers_end_together(
    monkeypatch: pytest.MonkeyPatch, lanes: int
) -> None:
    """Issue 20: in vector lanes each stream goes at the lanes' speed, slower than one of a
    pair: a helper's time is set by its second largest chunk, and small chunks go with
    the largest.  Without lanes, streams go two by two: the bytes are shared evenly."""
    monkeypatch.setattr(md5pair, "LANES", lanes)
    sizes = [172, 440, 440, 440, 517, 77]  # MB: the chunks of benchmarks/transfer_bench.py
    largest_first = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    groups = verify._shared(largest_first, sizes, 2)
    if lanes:
        assert groups == [[4, 0, 5], [1, 2, 3]]
    else:
        assert groups == [[4, 3, 5], [1, 2, 0]]  # 1034 and 1052 MB
    assert verify._shared(largest_first, sizes, 1) == [largest_first[:4]]  # four at most
    assert verify._shared(largest_first[:1], sizes, 4) == [[4]]


def test_a_chunk_cut_short_while_a_helper_reads_its_pages_is_read_again_and_reported(
    chunks: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20: a helper reads chunks as mapped pages, and a page of a file cut short
    while it is mapped kills it (SIGBUS).  Its parent reads the chunks again, by reading
    them, and reports the one cut short: one report, no traceback, exit code 1."""
    monkeypatch.setattr(verify, "_WORTH_HELPERS", 0)  # (a few MB here: too few to fork for)
    tars = sorted(chunks.glob("*.tar"))
    cut = tars[1]
    mapped_by = chunks.parent / "mapped-by"  # the processes that mapped a chunk, and which
    mapped = tarread._Mapped.__init__

    def map_then_cut(self: tarread._Mapped, fd: int, **kwargs: Any) -> None:
        mapped(self, fd, **kwargs)
        with mapped_by.open("a") as record:
            record.write(f"{os.getpid()} {os.readlink(f'/proc/self/fd/{fd}')}\n")
        if os.path.samefile(f"/proc/self/fd/{fd}", cut):  # its pages now lie past the end
            os.truncate(cut, 0)

    monkeypatch.setattr(tarread._Mapped, "__init__", map_then_cut)
    was = faulthandler.is_enabled()  # (pytest's: the helper's death is no fault here)
    faulthandler.disable()
    try:
        code, report = _verify(capsys, chunks)
    finally:
        if was:
            faulthandler.enable(file=sys.__stderr__)
    mappings = [line.split(" ", 1) for line in mapped_by.read_text().splitlines()]
    assert str(cut) in {path for _, path in mappings}  # (its helper died: SIGBUS)
    assert str(os.getpid()) not in {pid for pid, _ in mappings}  # only helpers map chunks
    assert code == 1
    problems = {(p["kind"], p["path"]): p for p in report["problems"]}
    assert problems[("corrupt", str(cut))]["found"] == _md5(cut)
    assert "Traceback" not in capsys.readouterr().err


def test_an_extra_member_and_a_missing_checksum_are_reported(
    chunks: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    last = sorted(chunks.glob("*.tar"))[-1]
    (tmp_path / P).mkdir()
    (tmp_path / P / "stray.txt").write_text("extra\n")
    subprocess.run(["tar", "rf", str(last), f"{P}/stray.txt"], cwd=tmp_path, check=True)
    (chunks / f"{last.name}.md5sum").unlink()
    (chunks / f"{SET}.md5sums").unlink()
    code, report = _verify(capsys, chunks)
    assert code == 1
    assert [(p["kind"], p["path"]) for p in report["problems"]] == [
        ("missing", f"{last}.md5sum"),
        ("extra", f"{P}/stray.txt"),
    ]
    assert report["problems"][0]["found"] == _md5(last)


def test_a_chunk_missing_from_the_numbering_is_found_without_the_list(
    chunks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (chunks / f"{SET}.md5sums").unlink()
    last = sorted(chunks.glob("*.tar"))[-1]
    last.unlink()
    code, report = _verify(capsys, chunks)
    assert code == 1 and ("missing", str(last)) in [
        (p["kind"], p["path"]) for p in report["problems"]
    ]


def test_a_chunk_left_as_a_part_by_a_stopped_split_is_said_so(
    chunks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A split killed while it wrote its last chunks leaves them as .part files: the
    report listed them, and every file in them, as missing, and said nothing of why."""
    (chunks / f"{SET}.md5sums").unlink()  # (written last: a stopped split has none)
    last = sorted(chunks.glob("*.tar"))[-1]
    with open(last, "r+b") as f:
        f.truncate(last.stat().st_size // 2)
    last.rename(f"{last}.part")
    (chunks / f"{last.name}.md5sum").unlink()
    code, report = _verify(capsys, chunks)
    assert code == 1
    said = next(p for p in report["problems"] if p["path"] == str(last))
    assert said["kind"] == "missing"
    assert said["found"] == "only its .part, of a split that was stopped: split again"


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda d: d / "nowhere", "nothing to verify here"),
        (lambda d: d, "neither a package with manifest.md5 nor tar chunks"),
        (lambda d: (d / "x.tar").touch() or d / "x.tar", "not a chunk named as"),
    ],
)
def test_bad_input_exits_2(
    tmp_path: Path, make: object, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    assert main(["verify", str(path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert said in err and "Traceback" not in err


def test_the_second_hashing_process_stops_when_verify_is_killed(tmp_path: Path) -> None:
    """verify hashes in two processes; if it is killed, the forked one must not go on reading
    the whole package alone.  Six sparse files of 512 MB (no disk used): the child is caught
    reading its first one, the parent killed, and the child may then finish that file only."""
    size, names = 512 << 20, [f"f{i}" for i in range(6)]
    for name in names:
        with open(tmp_path / name, "wb") as out:
            out.truncate(size)
    script = (
        "import sys\n"
        "from almaqa2 import manifest\n"
        f"manifest.mismatches({str(tmp_path)!r}, {names!r}, {[size] * 6!r}, ['x'] * 6)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        child, read = 0, 0
        while not read:  # the child's pid, then its first bytes of a file
            assert parent.poll() is None, "verify ended before its child was seen reading"
            children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children")
            child = child or int((children.read_text().split() or ["0"])[0])
            read = child and _bytes_read(child) > size // 64
        parent.kill()
        parent.wait()
        while (now := _bytes_read(child)) >= 0:
            read = max(read, now)
        assert read < 2 * size, f"the orphan read {read >> 20} MB"
    finally:
        parent.kill()
        parent.wait()


def _bytes_read(pid: int) -> int:
    """The bytes ``pid`` has read (/proc/pid/io's rchar); -1 once it is gone."""
    try:
        io = Path(f"/proc/{pid}/io").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return -1
    return int(io.split("rchar:")[1].split()[0])


def test_the_second_hashing_process_ends_when_verify_dies_holding_the_counter(
    tmp_path: Path,
) -> None:
    """The two hashing processes take batches under one lock; if verify is killed while it
    holds it, the forked one, waiting for it, must not wait for ever: it hashes the rest
    and ends (the kernel drops a dead process's record lock)."""
    for i in range(600):
        (tmp_path / f"f{i:03d}").write_bytes(b"x" * i)
    names = [f"f{i:03d}" for i in range(600)]
    script = (
        "import multiprocessing, os, signal\n"
        "from almaqa2 import manifest\n"
        "hash_batches = manifest._hash_batches\n"
        "def dying(shared, me, after):\n"
        "    if me == 0:  # this process: say the child's pid, take the lock, die with it\n"
        "        print(multiprocessing.active_children()[0].pid, flush=True)\n"
        "        shared[5]._locked().__enter__()\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return hash_batches(shared, me, after)\n"
        "manifest._hash_batches = dying\n"
        f"manifest.mismatches({str(tmp_path)!r}, {names!r}, list(range(600)), ['x'] * 600)\n"
    )
    assert _orphan_ends(script, 60), "the orphan waits for a lock its dead parent holds"


def _orphan_ends(script: str, seconds: float) -> bool:
    """Whether the child whose pid ``script`` prints, before it kills itself, ends within
    ``seconds`` of its parent's death (it is killed if not)."""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.stdout.close()
    assert parent.wait() == -signal.SIGKILL
    deadline = time.monotonic() + seconds
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = Path(f"/proc/{child}").exists()
    if alive:
        os.kill(child, signal.SIGKILL)
    return not alive


def _damaged_package(root: Path, runs: int, per_run: int) -> tuple[Path, list[str]]:
    """A package of ``runs`` directories of ``per_run`` small files, one file of each
    damaged, and three large files (one damaged); a file missing, one extra."""
    package = root / P
    digests = {}
    for n in range(runs * per_run):
        rel = f"calibration/t{n // per_run:02d}.tbl/f{n:04d}"
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_bytes(b"%d" % n)
        digests[rel] = hashlib.md5(b"%d" % n).hexdigest()
    for n in range(3):  # first in the walk: they would be hashed first if not left aside
        rel = f"calibration/cube{n}.fits"
        (package / rel).write_bytes(bytes([n]) * (manifest.SMALL + 1000 * n + 1))
        digests[rel] = _md5(package / rel)
    manifest.write(package, P, digests)
    damaged = [f"calibration/t{n:02d}.tbl/f{n * per_run + n:04d}" for n in range(runs)]
    damaged.append("calibration/cube1.fits")
    for rel in damaged:
        with open(package / rel, "r+b") as f:
            f.write(b"X")
    (package / "calibration/t01.tbl" / f"f{per_run + 7:04d}").unlink()
    (package / "calibration/t01.tbl/stray").write_bytes(b"")
    return package, damaged


def _problems(report: Any, damaged: list[str], per_run: int) -> None:
    assert sorted((p.kind.value, p.path) for p in report.problems) == sorted(
        [("corrupt", f"{P}/{rel}") for rel in damaged]
        + [("missing", f"{P}/calibration/t01.tbl/f{per_run + 7:04d}")]
        + [("extra", f"{P}/calibration/t01.tbl/stray")]
    )


def test_each_small_file_of_a_run_gets_its_own_md5_when_the_run_is_hashed_at_once(
    tmp_path: Path,
) -> None:
    """A run's small files are hashed together at its end: each md5 must go back to its
    own file, whatever lies between them (a large file, only measured; one that cannot
    be read; an empty one)."""
    names: list[str] = []
    expected: list[str | int] = []
    small = 0
    for i in range(30):
        names.append(name := f"f{i:02d}")
        if i % 7 == 5:  # never made
            expected.append("unreadable (No such file or directory)")
            continue
        data = os.urandom(manifest.SMALL + 1 + i if i % 7 == 3 else i * 997 % 20_000)
        (tmp_path / name).write_bytes(data)
        if len(data) > manifest.SMALL:
            expected.append(len(data))
        else:
            expected.append(hashlib.md5(data).hexdigest())
            small += len(data)
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        assert package_hashes.hashed(fd, names) == (expected, small)
    finally:
        os.close(fd)


def test_both_processes_hash_and_each_damage_is_found_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """verify and its helper walk the package together, each hashing the runs of files it
    comes to first; the large files are hashed last.  Each damage is found once,
    whoever hashed the file."""
    package, damaged = _damaged_package(tmp_path, runs=40, per_run=50)
    monkeypatch.setattr(package_hashes, "_RUN", 10)
    hashed = package_hashes.hashed

    def slowly(fd: int, names: list[str]) -> tuple[list[Any], int]:
        time.sleep(
            0.003
        )  # (as on a busy disk: this process cannot do all before the helper starts)
        return hashed(fd, names)

    monkeypatch.setattr(package_hashes, "hashed", slowly)
    with caplog.at_level("DEBUG", "almaqa2"):
        report = verify.verify([package])
    assert report.checked == 40 * 50 - 1 + 3
    _problems(report, damaged, 50)
    theirs = re.search(r"(\d+) of (\d+) files were hashed by a helper", caplog.text)
    assert theirs and 0 < int(theirs[1]) < int(theirs[2]) == 40 * 50 + 3


@pytest.mark.parametrize("killed_after", [0, 1, 5], ids=lambda n: f"after-{n}-runs")
def test_what_a_dying_helper_claimed_and_did_not_send_is_hashed_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed_after: int
) -> None:
    """If the helper dies (here: killed by itself after hashing some runs), the runs it
    had claimed and not sent are hashed by verify: every damage is still found."""
    package, damaged = _damaged_package(tmp_path, runs=12, per_run=20)
    monkeypatch.setattr(package_hashes, "_RUN", 20)  # a damaged file in every run
    hashed, us, done = package_hashes.hashed, os.getpid(), [0]

    def dying(fd: int, names: list[str]) -> tuple[list[Any], int]:
        if os.getpid() != us:
            if done[0] == killed_after:
                os.kill(os.getpid(), signal.SIGKILL)
            done[0] += 1
        return hashed(fd, names)

    def slowly(path: Path) -> dict[str, str]:  # as a large manifest: the helper goes first
        time.sleep(0.5)
        return read(path)

    read = verify.manifest.read
    monkeypatch.setattr(package_hashes, "hashed", dying)
    monkeypatch.setattr(verify.manifest, "read", slowly)
    report = verify.verify([package])
    assert report.checked == 12 * 20 - 1 + 3
    _problems(report, damaged, 20)


def test_idle_work_is_done_only_while_no_piece_is_waiting() -> None:
    """``forked.received_pieces`` calls ``idle`` while the helper has sent nothing, until it
    says it is done; never when a piece (or the end) is waiting."""
    import multiprocessing

    def send(pipe: object, go: object) -> None:
        go.wait(10)  # type: ignore[attr-defined]
        forked.send_pieces(pipe, [["a"], ["b"]])

    go = multiprocessing.get_context("fork").Event()
    helper = forked.Helper(send, go)
    calls: list[int] = []
    received: list[list[str]] = []

    def idle() -> bool:
        calls.append(len(received))
        if len(calls) == 5:
            go.set()
        return len(calls) < 5

    try:
        received += forked.received_pieces(helper.pipe, idle)
    finally:
        helper.stop()
    assert received == [["a"], ["b"]] and calls[:5] == [0] * 5

    go.set()  # the next helper sends everything at once, and ends
    helper = forked.Helper(send, go)
    while helper.alive():
        time.sleep(0.01)
    waiting: list[int] = []

    def counted() -> bool:
        waiting.append(1)
        return len(waiting) < 100

    try:
        assert list(forked.received_pieces(helper.pipe, counted)) == [["a"], ["b"]]
    finally:
        helper.stop()
    assert waiting == []


def test_a_helper_sending_pieces_stops_when_its_parent_is_gone() -> None:
    """A helper that sends pieces as it makes them (verify's walk and hash, the second half
    of a chunk) makes no more once its parent is killed: here, pieces without end."""
    script = (
        "import itertools, os, signal, time\n"
        "from almaqa2 import forked\n"
        "def endless(pipe):\n"
        "    forked.send_pieces(pipe, (time.sleep(0.001) or n for n in itertools.count()))\n"
        "helper = forked.Helper(endless)\n"
        "forked.receive(helper.pipe, raw=True)  # it is sending\n"
        "print(helper._process.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert _orphan_ends(script, 30), "the orphan goes on making pieces for nobody"
