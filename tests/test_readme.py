"""README: known blank header fields are filled, given ones kept, the tree is the package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from almaqa2.package.readme import fill_header
from almaqa2.sizes import human_size
from almaqa2.testing import reductions as example

from conftest import Case, make_case


def _member(case: Case) -> Path:
    return next(case.packpath.glob("*/*/*"))


def test_blank_known_fields_are_filled(case229: Case) -> None:
    case229.readme.write_text(
        "Cycle:\nProject code:\nSB name:\nPI name: A. Astronomer\n"
        "CASA version used for reduction:\nExecution blocks:\nComments from Reducer:\n"
    )
    argv, _ = case229.commands("fake")
    from almaqa2.cli import main

    assert main([*argv, "--sb-name", "IRC10216_setup3_b6"]) == 0
    text = (_member(case229) / "README").read_text()
    assert "Cycle: 0\n" in text
    assert "Project code: 2011.0.00229.S\n" in text
    assert "SB name: IRC10216_setup3_b6\n" in text
    assert "PI name: A. Astronomer\n" in text
    assert f"CASA version used for reduction: {example.CASA_VERSION}\n" in text
    assert "Execution blocks: uid___A002_X3dc0e7_X528, uid___A002_X3c9295_X8c\n" in text
    assert "Comments from Reducer:\n" in text
    assert "contents of IRC10216_setup3_b6_runx2.imaging.txt" in text  # the PI notes


def test_filled_fields_are_kept() -> None:
    assert fill_header("Project code: 2099.1.99999.S\n", {"project": "x"}) == (
        "Project code: 2099.1.99999.S\n"
    )


def test_mous_filled_from_the_nrao_directory_name(tmp_path: Path) -> None:
    case = make_case("nrao", tmp_path)
    assert case.run_cli("fake") == 0
    text = (_member(case) / "README").read_text()
    assert "MOUS UID: uid___A001_X13e_X1fe\n" in text


def _tree_entries(text: str) -> list[tuple[str, str | None]]:
    """(path, size text) from the README's tree section."""
    tree = text.split("Directory tree\n==============\n", 1)[1]
    lines = [line for line in tree.splitlines() if "|-- " in line]
    stack: list[str] = []
    found = []
    for line in lines:
        depth = line.index("|-- ") // 4
        entry = line[line.index("|-- ") + 4 :]
        size = re.search(r"  \((.+)\)$", entry)
        name = entry[: size.start()] if size else entry
        stack[depth:] = [name.rstrip("/")]
        found.append(
            ("/".join(stack) + ("/" if name.endswith("/") else ""), size[1] if size else None)
        )
    return found


def test_tree_matches_the_package(tmp_path: Path) -> None:
    case = make_case("project229", tmp_path)
    assert case.run_cli("copy") == 0
    member = _member(case)
    entries = _tree_entries((member / "README").read_text())
    shown = sorted(path for path, _ in entries)
    actual = []
    for path in sorted(member.rglob("*")):
        rel = path.relative_to(member).as_posix()
        if any(
            (parent.name.endswith(".plots") and not parent.name.endswith(".calibration.plots"))
            or (parent / "table.dat").exists()
            for parent in path.parents
            if parent != member and parent.is_relative_to(member)
        ):
            continue
        actual.append(rel + "/" if path.is_dir() else rel)
    assert shown == sorted(actual)
    for path, size in entries:
        target = member / path.rstrip("/")
        if size is not None:
            on_disk = (
                target.stat().st_size
                if target.is_file()
                else sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
            )
            assert size == human_size(on_disk), path


def test_the_readme_is_rendered_from_the_facts_alone(
    case229: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """facts reads the data, the logs and the notes once; rendering opens nothing (issue 15)."""
    import builtins

    from almaqa2.package import facts, packager, readme

    request = packager.resolve(packager.Request(case229.origpath, case229.packpath, case229.readme))
    plan = packager.prepare(request)
    found = facts.collect(plan, reduce=False)
    assert found.casa_versions and found.notes

    def no_io(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the README rendering opened {args[0]}")

    monkeypatch.setattr(builtins, "open", no_io)
    monkeypatch.setattr(Path, "open", no_io)
    text = readme.render(
        plan, readme.TEMPLATE, {p.dest.as_posix(): 1 for p in plan.placements}, found
    )
    assert found.casa_versions[0] in text and found.notes[0][0] in text


def test_fake_mode_reads_the_ebs_in_a_helper_and_says_here_what_it_could_not(
    case229: Case, capfd: pytest.CaptureFixture[str]
) -> None:
    """In fake mode the EBs' MSes are read by a helper process while the package is
    written.  An EB whose MSes cannot be read is warned of once, by this process (so that
    --json carries the warning), and the README says why the EB is not described; the
    other EBs are described from their MSes."""
    import json

    from almaqa2.cli.main import main

    for table in case229.origpath.glob("X8c/uid___A002_X3c9295_X8c.ms*/table.dat"):
        table.write_bytes(b"not a table")
    argv, _ = case229.commands("fake")
    assert main([*argv, "--json"]) == 0
    out, err = capfd.readouterr()
    said = [w for w in json.loads(out)["warnings"] if "uid___A002_X3c9295_X8c.ms" in w]
    assert len(said) == 1, said
    assert err.count("cannot read this MeasurementSet") == 1, err
    text = next(case229.packpath.rglob("README")).read_text()
    assert "uid___A002_X3c9295_X8c: not described (" in text
    assert "uid___A002_X3dc0e7_X528: not described" not in text
    assert "uid___A002_X3dc0e7_X528" in text


@pytest.mark.parametrize("mode", ["fake", "ticket", "copy", "hard"])
def test_blank_required_header_fields_warn_for_review_and_stop_a_delivery(
    mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17: PI name, project title, configuration and proposed rms are the reducer's to
    fill; a package for the PI (copy, hard) is refused without them, a review (fake, ticket)
    is warned; --allow-blank-header lets a delivery through."""
    from almaqa2.package.readme import TEMPLATE

    case = make_case("flat", tmp_path)
    case.readme.write_text(TEMPLATE.replace("PI name:", "PI name: A. Astronomer"))
    code = case.run_cli(mode)
    said = capsys.readouterr().err
    for field in ("Project title", "Configuration", "Proposed rms"):
        assert field in said, said
    assert "PI name" not in said.replace(str(case.readme), "")
    if mode in ("copy", "hard"):
        assert code == 2 and "--allow-blank-header" in said and not case.packpath.exists()
        assert case.run_cli(mode, "--allow-blank-header") == 0
    else:
        assert code == 0 and "warning" in said.lower()
    assert next(case.packpath.rglob("README")).is_file()


def test_the_old_call_checks_the_header_too(tmp_path: Path) -> None:
    from almaqa2.errors import InputError
    from almaqa2.package.legacy import QA_Packager
    from almaqa2.package.readme import TEMPLATE

    case = make_case("flat", tmp_path)
    case.readme.write_text(TEMPLATE)
    args = {"origpath": str(case.origpath), "readme": str(case.readme),
            "packpath": str(case.packpath), "mode": "copy"}  # fmt: skip
    with pytest.raises(InputError, match="PI name, Project title"):
        QA_Packager(**args)
    assert QA_Packager(**args, allow_blank_header=True).packpath == case.packpath


def test_the_old_call_prints_the_package_tree_as_the_original(
    case229: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed 000: 'the following package was created:' and the tree from the project down."""
    case229.run_legacy("fake")
    printed = capsys.readouterr().out.splitlines()
    start = printed.index("the following package was created:")
    tree = printed[start + 1 :]
    assert tree[:4] == [
        "2011.0.00229.S/",
        "|-- sg_ouss_id/",
        "|   |-- group_ouss_id/",
        "|   |   |-- member_ouss_id/",
    ]
    files = sorted(p for p in _member(case229).rglob("*") if p.is_file() or p.suffix == ".cal")
    shown = "\n".join(tree)
    for path in files:
        if path.parent.parent == _member(case229) or path.parent == _member(case229):
            assert f"-- {path.name}" in shown, path
