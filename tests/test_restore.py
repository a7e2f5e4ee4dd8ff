"""The PI's restore of a pipeline package (issue 14, acceptance 2 and 3): every file the
delivered pipeline manifest names is delivered under that name, the manifest is in script/,
``qa2 verify`` says so (and names what is not, under ``restore:``), and a restore done the
way the scriptForPI does it finds everything, in every pipeline style."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from almaqa2.cli import main
from almaqa2.testing import reductions as example
from test_stage import MEMBER, PROJECT, build_run, staged_case2

from conftest import QA2, md5sum_check

STYLES = ("cycle3-pipe1", "cycle4-pipe", "cycle5-pipe", "cycle10-pipe")
EBS = ("uid___A002_X85c183_X36f", "uid___A002_X85c183_X60b")


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A staged package, and the Case-2 packages of one (imaged in calibrated/), one per
    style (copy mode)."""
    staged = tmp_path_factory.mktemp("staged") / PROJECT
    assert main(["stage", str(build_run(staged.parent)), str(staged)]) == 0
    made = {"staged": staged}
    case2 = staged_case2(tmp_path_factory.mktemp("case2"))
    for style in STYLES:
        out = tmp_path_factory.mktemp(style)
        readme = out / "README.header.txt"
        readme.write_text(example.HEADER)
        packpath = out / PROJECT
        argv = ["package", str(case2), str(packpath), "--readme", str(readme), "--mode", "copy"]
        assert main([*argv, "--style", style]) == 0
        made[style] = packpath
    return made


def _member(package: Path) -> Path:
    return next(p for p in package.glob("*/*/*") if p.is_dir())


def _manifest_names(manifest: Path) -> list[str]:
    skip = {"piperesults", "ous", "session", "asdm", "casaversion"}
    return [e.get("name", "") for e in ET.parse(manifest).iter() if e.tag not in skip]


@pytest.mark.parametrize("which", ["staged", *STYLES])
def test_every_name_the_manifest_gives_is_delivered(which: str, packages: dict[str, Path]) -> None:
    member = _member(packages[which])
    [manifest] = (member / "script").glob("*pipeline_manifest.xml")
    assert not list((member / "calibration").glob("*pipeline_manifest.xml"))
    delivered = {p.name for p in member.rglob("*") if p.is_file()}
    names = _manifest_names(manifest)
    assert len(names) > 10 and not set(names) - delivered, set(names) - delivered
    if which.startswith(("cycle5", "cycle10")):
        assert f"member.{MEMBER.rsplit('.', 1)[-1]}.session_1.caltables.tgz" in names
    assert main(["verify", str(packages[which])]) == 0
    assert md5sum_check(packages[which]).returncode == 0


def _restore_as_script_for_pi(package: Path, into: Path) -> list[str]:
    """What a restore done as the delivered scriptForPI does it cannot find: from script/,
    by its globs, with calibrated/{rawdata, products, working} made as it makes them."""
    copy = Path(shutil.copytree(package, into / package.name, symlinks=True))
    member = _member(copy)
    script, calibration = member / "script", member / "calibration"
    missing = []
    manifests = sorted(script.glob("*pipeline_manifest.xml"))
    if not manifests:
        return ["No pipeline manifest found"]
    shutil.copy(manifests[0], calibration)
    if not [*script.glob("*cal*pprequest.xml"), *script.glob("*PPR*.xml")]:
        missing.append("pprequest")
    if not list(script.glob("*casa_piperestorescript.py")):
        missing.append("restore script")
    (member / "raw").mkdir(exist_ok=True)
    for eb in EBS:  # the PI puts the archive's ASDMs in raw/
        (member / "raw" / f"{eb}.asdm.sdm").mkdir(exist_ok=True)
    calibrated = member / "calibrated"
    calibrated.mkdir(exist_ok=True)
    for link, target in (("rawdata", "../raw"), ("products", "../calibration")):
        if not (calibrated / link).exists():
            (calibrated / link).symlink_to(target)
    (calibrated / "working").mkdir(exist_ok=True)
    working = calibrated / "working"
    tree = ET.parse(calibration / manifests[0].name)
    for session in tree.iter("session"):
        for caltables in session.iter("caltables"):
            if not (working / ".." / "products" / caltables.get("name", "")).is_file():
                missing.append(caltables.get("name", ""))
        for asdm in session.iter("asdm"):
            if not (working / ".." / "rawdata" / f"{asdm.get('name')}.asdm.sdm").is_dir():
                missing.append(f"{asdm.get('name')}.asdm.sdm")
            for element in ("finalflags", "applycmds"):
                for found in asdm.iter(element):
                    if not (working / ".." / "products" / found.get("name", "")).is_file():
                        missing.append(found.get("name", ""))
    return missing


@pytest.mark.parametrize("which", ["staged", *STYLES])
def test_a_restore_done_as_the_script_for_pi_does_finds_everything(
    which: str, packages: dict[str, Path], tmp_path: Path
) -> None:
    assert _restore_as_script_for_pi(packages[which], tmp_path) == []


def test_a_file_renamed_by_hand_is_named_under_restore(
    packages: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = Path(shutil.copytree(packages["cycle5-pipe"], tmp_path / PROJECT))
    member = _member(package)
    [flags] = (member / "calibration").glob(f"{EBS[1]}.ms.flagversions.tgz")
    flags.rename(flags.with_name("renamed.tgz"))
    assert _restore_as_script_for_pi(package, tmp_path / "try") == [flags.name]
    capsys.readouterr()
    assert main(["verify", str(package)]) == 1
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("restore: ")]
    assert len(lines) == 1 and flags.name in lines[0] and f"finalflags of {EBS[1]}" in lines[0]


def test_a_manifest_left_in_calibration_is_named(
    packages: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = Path(shutil.copytree(packages["cycle4-pipe"], tmp_path / PROJECT))
    member = _member(package)
    [manifest] = (member / "script").glob("*pipeline_manifest.xml")
    manifest.rename(member / "calibration" / manifest.name)
    assert _restore_as_script_for_pi(package, tmp_path / "try") == ["No pipeline manifest found"]
    capsys.readouterr()
    assert main(["verify", str(package)]) == 1
    assert "restore: " in capsys.readouterr().out


def test_a_pipe_in_place_of_the_manifest_is_named_never_waited_on(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    """verify reads each pipeline manifest of a package to see what the restore needs: a
    pipe in its place (which a plain open waits on for ever) is said to be unreadable."""
    package = Path(shutil.copytree(packages["cycle5-pipe"], tmp_path / PROJECT))
    [manifest] = (_member(package) / "script").glob("*pipeline_manifest.xml")
    manifest.unlink()
    os.mkfifo(manifest)
    done = subprocess.run(
        [*QA2, "verify", str(package)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    restore = [x for x in done.stdout.splitlines() if x.startswith("restore: ")]
    assert restore == [
        f"restore: {manifest.relative_to(tmp_path)}: cannot be read (not a plain file (a pipe,"
        " socket or device))"
    ], done.stdout


def test_stage_rewrites_the_image_names_it_compresses(tmp_path: Path) -> None:
    staged = tmp_path / PROJECT
    assert main(["stage", str(build_run(tmp_path)), str(staged)]) == 0
    [manifest] = (staged / MEMBER / "script").glob("*pipeline_manifest.xml")
    names = _manifest_names(manifest)
    assert any(n.endswith(".pb.fits.gz") for n in names)
    assert not any(n.endswith((".pb.fits", ".mask.fits")) for n in names)
