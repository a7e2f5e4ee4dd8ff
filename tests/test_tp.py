"""Total-power reductions (SPEC §4): recognised by their single-dish scripts, packaged in
the TP layout whatever the style says of MeasurementSets, odd script names warned about.
The package itself is the acceptance case ``tp`` (every mode, CLI and legacy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from almaqa2.package.legacy import QA_Packager

from conftest import listing, make_case


def test_nonstandard_script_is_packaged_and_named_in_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    case = make_case("tp", tmp_path)
    result = QA_Packager(str(case.origpath), str(case.readme), str(case.packpath), mode="fake")
    assert result.plan.style.tp and result.plan.reduction.tp
    warned = [r.getMessage() for r in caplog.records if "single-dish" in r.getMessage()]
    assert len(warned) == 1 and warned[0].endswith("Imaging/scriptForSDimaging_baseline_v2.py")
    assert "non-standard single-dish script name" in warned[0]
    script = result.member_dir / "script" / "scriptForSDimaging_baseline_v2.py"
    assert script.is_file()


def test_tp_layout_overrides_a_style_with_measurement_sets(tmp_path: Path) -> None:
    case = make_case("tp", tmp_path)
    result = QA_Packager(
        str(case.origpath), str(case.readme), str(case.packpath), mode="copy",
        style="cycle0-nopipe",
    )  # fmt: skip
    assert result.plan.style.noms
    packaged = listing(case.packpath)
    assert not [p for p in packaged if "/raw/" in p or "/calibrated/" in p]
    assert [p for p in packaged if p not in case.expected] == [
        f"{case.packpath.name}/.almaqa2.json",
        f"{case.packpath.name}/manifest.md5",
    ]


def test_detection_ignores_case_and_a_manual_reduction_is_not_tp(tmp_path: Path) -> None:
    case = make_case("tp", tmp_path / "a")
    for script in case.origpath.rglob("*scriptForSD*"):
        script.rename(script.with_name(script.name.replace("scriptForSD", "scriptforsd")))
    result = QA_Packager(str(case.origpath), str(case.readme), str(case.packpath), mode="fake")
    assert result.plan.reduction.tp
    manual = make_case("nrao", tmp_path / "b")
    result = QA_Packager(str(manual.origpath), str(manual.readme), str(manual.packpath))
    assert not result.plan.reduction.tp and not result.plan.style.tp
