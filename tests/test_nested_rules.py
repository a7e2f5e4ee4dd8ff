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


def test_each_placement_carries_where_it_was_found_and_its_eb(tmp_path: Path) -> None:
    """The plan says once where each file sits and whose EB it is; nothing works it out
    again (the facts use the same answer)."""
    from almaqa2.package.packager import Request, prepare

    case = make_case("project229", tmp_path)
    request = Request(case.origpath, case.packpath, readme=case.readme, mode="fake")
    placed = prepare(request).placements
    for placement in placed:
        top = placement.source.rel.parts[0]
        if top in ("X8c", "X528") and len(placement.source.rel.parts) > 1:
            assert placement.eb is not None and placement.eb.uid.endswith(top), placement
            assert placement.place in ("eb", "qa2", "eb-nested"), placement
        else:
            assert (placement.place, placement.eb) == ("sb", None), placement
    assert {p.place for p in placed} >= {"eb", "qa2", "sb"}
