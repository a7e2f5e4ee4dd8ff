"""The walk of a reduction: tables and plots directories are listed by two processes when
they hold many files, with the same result, and the same first error, as one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from almaqa2 import forked
from almaqa2.errors import InputError
from almaqa2.package import scan

UID = "uid___A002_Xb00001_X1"


FILES = (40, 40, 30, 20, 10)  # in each table: tables 0 and 1 the largest, of one size


def _reduction(root: Path) -> Path:
    """Calibration tables of different sizes, each with a subdirectory, one with a file
    reached through a link, and a plots directory."""
    eb = root / "X1"
    eb.mkdir(parents=True)
    (eb / "outside.dat").write_bytes(b"reached through a link")
    for t, files in enumerate(FILES):
        table = eb / f"{UID}.ms.split.table{t}"
        (table / "SUB").mkdir(parents=True)
        (table / "table.dat").write_bytes(b"table")
        for i in range(files):
            (table / f"table.f{i}").write_bytes(b"x" * (i + t))
        (table / "SUB" / "table.dat").write_bytes(b"sub")
    os.symlink(eb / "outside.dat", eb / f"{UID}.ms.split.table2" / "linked.f0")
    plots = eb / f"{UID}.ms.split.table1.plots"
    plots.mkdir()
    for i in range(30):
        (plots / f"p{i}.png").write_bytes(b"png")
    return root


def _listed(entries: tuple[scan.SourceEntry, ...]) -> dict[str, tuple[object, int]]:
    return {
        str(e.rel): (e.members, e.size)
        for e in entries
        if e.kind in (scan.Kind.TABLE, scan.Kind.PLOTS)
    }


def test_directories_listed_by_two_processes_are_listed_as_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _reduction(tmp_path / "reduction")
    one = _listed(scan.scan(root))
    monkeypatch.setattr(scan, "_WORTH_A_HELPER", 0)  # two processes however few the files
    two = _listed(scan.scan(root))
    assert two == one and len(two) == 6
    for rel, (members, size) in two.items():
        assert (members, size) == scan.members(str(root / rel))
        assert size == sum(m.size or 0 for m in members) > 0
    linked = two[f"X1/{UID}.ms.split.table2"][0]
    assert scan.Member("linked.f0", 22, str(root / "X1" / "outside.dat")) in linked


@pytest.mark.parametrize("dies_after", [None, 1])
def test_the_helper_lists_its_share_and_what_it_did_not_send_is_listed_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dies_after: int | None
) -> None:
    root = _reduction(tmp_path / "reduction")
    one = _listed(scan.scan(root))
    monkeypatch.setattr(scan, "_WORTH_A_HELPER", 0)
    record, answer = tmp_path / "answered", scan._plain

    def noted(path: str) -> scan.Plain:
        with record.open("a") as out:
            out.write(f"{os.getpid()} {path}\n")
        if dies_after is not None and len(record.read_text().splitlines()) > dies_after:
            os._exit(1)  # the helper dies before sending this one
        return answer(path)

    monkeypatch.setattr(scan, "_plain", noted)
    assert _listed(scan.scan(root)) == one
    answered = [line.split() for line in record.read_text().splitlines()]
    assert {int(pid) for pid, _path in answered} - {os.getpid()}, "a helper answered"
    units = sorted(p for p in (root / "X1").iterdir() if p.is_dir())
    theirs = forked.their_share([u.stat().st_size for u in units], 0)
    assert len(answered) == (len(theirs) if dies_after is None else dies_after + 1)


@pytest.mark.parametrize("bad", [(0,), (1,), (0, 1), (1, 3)], ids=str)
def test_the_first_bad_file_in_order_is_named_whichever_process_listed_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: tuple[int, ...]
) -> None:
    """Tables 0 and 1, the largest, of one size: this process lists the one, the helper
    the other."""
    root = _reduction(tmp_path / "reduction")
    monkeypatch.setattr(scan, "_WORTH_A_HELPER", 0)
    units = sorted((root / "X1").glob(f"{UID}.ms.split.table*"))  # as the walk finds them
    assert [u.name[-6:] for u in units[:2]] == ["table0", "table1"]
    assert len({0, 1} & set(forked.their_share([u.stat().st_size for u in units], 0))) == 1
    for t in bad:
        os.mkfifo(root / "X1" / f"{UID}.ms.split.table{t}" / "SUB" / "pipe")
    with pytest.raises(InputError, match="not a regular file") as raised:
        scan.scan(root)
    assert raised.value.path == str(root / "X1" / f"{UID}.ms.split.table{bad[0]}" / "SUB" / "pipe")


def test_the_helpers_share_balances_the_directories_sizes() -> None:
    assert forked.their_share([100, 100], 1000) == []  # not worth a process
    sizes = [40_000, 10_000, 30_000, 20_000, 5_000]
    theirs = forked.their_share(sizes, 1000)
    mine = [i for i in range(len(sizes)) if i not in theirs]
    assert theirs == sorted(theirs) and theirs and mine
    assert abs(sum(sizes[i] for i in theirs) - sum(sizes[i] for i in mine)) <= 5_000
