"""Issue 18: every command takes paths as a reducer types them, relative to where they are,
and gives what the same command gives with absolute paths; links made resolve.

Each command runs twice: from ``tmp/elsewhere`` with paths like ``../reduction/...``, and
from ``/`` with absolute paths, each into its own destination; the results are compared.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from almaqa2.cli import main
from test_fluxequal import _links
from test_stage import build_run
from test_start import EBS, SB, _asdm

from conftest import listing, make_case


def _both(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: Callable[[Callable[[Path], str], str], list[str]],
) -> tuple[dict, dict]:
    """The ``--json`` result of ``argv(path, side)`` run relative and absolute; ``path``
    spells a path as that run types it, ``side`` names its own destinations."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    found = {}
    for side, cwd in (("rel", elsewhere), ("abs", Path("/"))):
        monkeypatch.chdir(cwd)

        def spelled(path: Path, relative: bool = side == "rel", cwd: Path = cwd) -> str:
            return os.path.relpath(path, cwd) if relative else str(path)

        assert main([*argv(spelled, side), "--json"]) == 0, capsys.readouterr().err
        found[side] = json.loads(capsys.readouterr().out)
    return found["rel"], found["abs"]


def test_package_split_verify_untar_deliver_inspect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case = make_case("nrao", tmp_path)  # --pi-script {origpath}/../scriptForPI.py too
    argv, _ = case.commands("copy")
    out = {side: tmp_path / f"out-{side}" for side in ("rel", "abs")}
    for made in out.values():
        made.mkdir()

    def package(p: Callable[[Path], str], side: str) -> list[str]:
        typed = [p(Path(a)) if a.startswith("/") else a for a in argv]
        at = typed.index(p(case.packpath))
        typed[at] = p(out[side] / case.packpath.name)
        return typed

    rel, abs_ = _both(tmp_path, monkeypatch, capsys, package)
    packages = {side: out[side] / case.packpath.name for side in out}
    assert listing(packages["rel"]) == listing(packages["abs"])
    sums = {side: (packages[side] / "manifest.md5").read_text().splitlines() for side in out}
    assert [ln for ln in sums["rel"] if ".almaqa2.json" not in ln] == [  # the marker: its time
        ln for ln in sums["abs"] if ".almaqa2.json" not in ln
    ]
    assert rel["packpath"] == str(packages["rel"]), "results name absolute paths"

    one = packages["abs"]  # split the same package twice: the chunks must be the same
    rel, abs_ = _both(tmp_path, monkeypatch, capsys, lambda p, side: [
        "tarsplit", p(one), "--out", p(tmp_path / f"chunks-{side}"),
        "--max-size", "20K"])  # fmt: skip
    chunks = {side: tmp_path / f"chunks-{side}" for side in ("rel", "abs")}
    assert [c["md5"] for c in rel["chunks"]] == [c["md5"] for c in abs_["chunks"]]

    rel, abs_ = _both(tmp_path, monkeypatch, capsys, lambda p, side: ["verify", p(chunks[side])])
    assert rel["ok"] and abs_["ok"] and rel["checked"] == abs_["checked"]

    rel, abs_ = _both(tmp_path, monkeypatch, capsys, lambda p, side: ["inspect", p(chunks[side])])
    assert rel["projects"] == abs_["projects"]

    rel, abs_ = _both(tmp_path, monkeypatch, capsys, lambda p, side: [
        "untar", p(chunks[side]), "--out", p(tmp_path / f"unpacked-{side}")])  # fmt: skip
    assert listing(Path(rel["package"])) == listing(Path(abs_["package"])) == listing(one)

    rel, abs_ = _both(tmp_path, monkeypatch, capsys, lambda p, side: [
        "deliver", p(chunks[side]), "--web-root", p(tmp_path / f"web-{side}")])  # fmt: skip
    assert sorted(f["name"] for f in rel["files"]) == sorted(f["name"] for f in abs_["files"])
    assert Path(rel["folder"]).is_absolute() and Path(rel["folder"]).is_dir()


def test_stage_start_and_fluxequal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path)
    for side in ("rel", "abs"):
        (tmp_path / f"staged-{side}").mkdir()  # the staged root is the last level, as packpath
    _both(tmp_path, monkeypatch, capsys, lambda p, side: [
        "stage", p(run), p(tmp_path / f"staged-{side}" / "2013.1.00456.S")])  # fmt: skip
    staged = [tmp_path / f"staged-{side}" / "2013.1.00456.S" for side in ("rel", "abs")]
    assert listing(staged[0]) == listing(staged[1])

    for uid in EBS:
        _asdm(tmp_path / "archive" / SB, uid)
    for side in ("rel", "abs"):
        (tmp_path / f"area-{side}" / "2019.1.01234.S").mkdir(parents=True)
    _both(tmp_path, monkeypatch, capsys, lambda p, side: [
        "start", SB, "--archive", p(tmp_path / "archive"),
        "--into", p(tmp_path / f"area-{side}" / "2019.1.01234.S")])  # fmt: skip
    areas = [tmp_path / f"area-{side}" for side in ("rel", "abs")]
    links = [sorted(p for p in area.rglob("uid___*") if p.is_symlink()) for area in areas]
    assert len(links[0]) == len(EBS) and [p.name for p in links[0]] == [p.name for p in links[1]]
    assert all(p.resolve() == tmp_path / "archive" / SB / p.name for p in links[0] + links[1])

    nrao = make_case("nrao", tmp_path / "fluxequal")
    calibrated = {}
    for side in ("rel", "abs"):
        copy = Path(shutil.copytree(nrao.origpath, tmp_path / f"nrao-{side}", symlinks=True))
        calibrated[side] = copy / "Combination" / "calibrated"
        for entry in calibrated[side].iterdir():
            if entry.name.startswith("uid___"):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    _both(tmp_path, monkeypatch, capsys, lambda p, side: ["fluxequal", p(calibrated[side])])
    made = {side: _links(calibrated[side]) for side in calibrated}
    assert len(made["rel"]) == 4 and all(Path(t).exists() for t in made["rel"].values())
    assert {n: Path(t).relative_to(tmp_path / "nrao-rel") for n, t in made["rel"].items()} == {
        n: Path(t).relative_to(tmp_path / "nrao-abs") for n, t in made["abs"].items()
    }
