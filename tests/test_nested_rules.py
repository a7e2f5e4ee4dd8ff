"""A file deeper inside an EB directory has rules of its own (issue 15): a script is
delivered as a script, a log as the EB's log, as the same files are elsewhere."""

from __future__ import annotations

from pathlib import Path

from conftest import make_case

EB = "uid___A002_X3c9295_X8c"


def test_files_nested_in_an_eb_directory_are_classified(tmp_path: Path) -> None:
    case = make_case("project229", tmp_path)
    nested = case.origpath / "X8c" / "extra"
    nested.mkdir()
    (nested / "helper.py").write_text("# a helper of the calibration\n")
    (nested / "casa-20120503-101010.log").write_text("INFO casa CASA Version 4.2.2\n")
    assert case.run_cli("fake", "--strict") == 0
    member = case.packpath / "sg_ouss_id" / "group_ouss_id" / "member_ouss_id"
    assert (member / "script" / "helper.py").is_file()
    assert (member / "log" / f"{EB}__casa-20120503-101010.log").is_file()
