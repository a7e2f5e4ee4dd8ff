"""The package README says only what is true of its package (issue 17): each claim it
makes is checked against the package itself, for the styles of several cycles and for a
pipeline Case-2 package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from almaqa2.cli import main
from almaqa2.version import __version__
from test_stage import MOUS, case2_argv

from conftest import make_case

CASES = {  # id: (acceptance case, style)
    "cycle0": ("project229", "cycle0-nopipe"),
    "cycle2": ("flat", "cycle2-nopipe"),
    "cycle3": ("flat", "cycle3-nopipe"),
    "cycle4": ("nrao", "cycle4-nopipe"),
    "cycle5": ("archive2017", "cycle5-nopipe"),
}


def _packaged(kind: str, tmp_path: Path) -> Path:
    """The member directory of a copy-mode package of the case ``kind``."""
    if kind == "case2":
        argv, packpath = case2_argv(tmp_path)
        assert main([*argv, "--style", "cycle4-pipe", "--mode", "copy"]) == 0
        return next(packpath.glob(f"*/*/member.{MOUS}"))
    name, style = CASES[kind]
    case = make_case(name, tmp_path)
    argv, _ = case.commands("copy")
    argv[argv.index("--style") + 1] = style
    assert main(argv) == 0
    return next(p for p in case.packpath.glob("*/*/*") if p.is_dir())


def _files(member: Path, subdir: str) -> list[str]:
    return [p.name for p in (member / subdir).rglob("*")] if (member / subdir).is_dir() else []


@pytest.mark.parametrize("kind", [*CASES, "case2"])
def test_every_claim_of_the_readme_holds_for_its_package(kind: str, tmp_path: Path) -> None:
    member = _packaged(kind, tmp_path)
    readme = next(p for p in member.iterdir() if "README" in p.name).read_text()
    contents = readme.split("Contents\n========\n", 1)[1].split("\nDirectory tree", 1)[0]
    claims = dict(re.findall(r"^- (\w+): (.*)$", contents, re.M))
    subdirs = {p.name for p in member.iterdir() if p.is_dir()}
    assert set(claims) == subdirs, (claims, subdirs)  # each subdirectory, and only those

    gz = [f for f in _files(member, "product") if f.endswith(".gz")]
    assert ("gzipped" in claims.get("product", "")) == bool(gz)
    pi_scripts = [f for f in _files(member, "script") if "scriptForPI" in f]
    assert ("scriptForPI" in readme) == bool(pi_scripts)
    ms_raw = [f for f in _files(member, "raw") if f.endswith((".ms", ".ms.split"))]
    assert ("DATA column only" in readme) == bool(ms_raw)
    ms_cal = [f for f in _files(member, "calibrated") if f.endswith((".ms", ".ms.split.cal"))]
    assert ("calibrated data as DATA" in readme) == bool(ms_cal)
    bundles = list(member.rglob("*.tgz"))
    assert (".tgz" in readme) == bool(bundles)
    assert "md5sum -c" in readme and (member.parents[2] / "manifest.md5").is_file()
    assert f"almaqa2 {__version__}" in readme

    ebs = readme.split("Execution blocks\n================\n", 1)[1].split("\n\n", 1)[0]
    for uid in re.findall(r"^(uid___\w+)", ebs, re.M):
        delivered = [f for f in _files(member, "raw") + _files(member, "calibrated")
                     if f.startswith(uid) and ".ms" in f]  # fmt: skip
        described = f"{uid} (read from" in ebs
        assert described or not delivered, (uid, delivered)
    if kind == "case2":  # the reduction holds calibrated/<EB>.ms.split.cal: it describes it
        assert "uid___A002_X85c183_X36f (read from" in ebs
        assert "casa --pipeline" in readme and "SPACESAVING" in readme
    if pi_scripts:  # how the CASA of the logs runs a script
        name = pi_scripts[0]
        assert f"exec(open('{name}').read())" in readme or f"execfile('{name}')" in readme


def test_fake_mode_does_not_tell_the_pi_to_check_a_manifest_it_lacks(tmp_path: Path) -> None:
    case = make_case("flat", tmp_path)
    assert case.run_cli("fake") == 0
    readme = next(case.packpath.rglob("README")).read_text()
    assert "md5sum -c" not in readme and not (case.packpath / "manifest.md5").exists()
