"""``qa2 inspect``: the same inventory from a package, its chunks and a doubled unpacking;
a staged pipeline package is told apart from a manual one."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from almaqa2.cli import main as cli_main
from test_stage import MEMBER, MOUS, PROJECT, build_run

NRAO_EBS = ["uid___A002_X3c7a84_X2cd", "uid___A002_X3c7a84_X443"]


def _inspect(capsys: pytest.CaptureFixture[str], *paths: Path) -> dict:
    capsys.readouterr()
    assert cli_main(["inspect", *map(str, paths), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _sizes_on_disk(member: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for dirpath, _, filenames in os.walk(member):
        for name in filenames:
            path = Path(dirpath, name)
            top = path.relative_to(member).parts[0]
            sizes[top] = sizes.get(top, 0) + path.stat().st_size
    return sizes


def _only_member(found: dict) -> dict:
    (project,) = found["projects"]
    (sg,) = project["science_goals"]
    (group,) = sg["groups"]
    (member,) = group["members"]
    return member


def test_final_package_and_its_chunks(nrao_split: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = nrao_split / "out" / "2013.1.00123.S"
    from_dir = _inspect(capsys, package)
    member = _only_member(from_dir)
    assert member["name"] == "member.uid___A001_X13e_X1fe"
    assert member["uid"] == "uid___A001_X13e_X1fe"
    assert member["calibration"] == "manual"
    assert member["ebs"] == NRAO_EBS
    assert member["script_for_pi"] == "script/scriptForPI.py"  # cycle 4: unprefixed
    assert member["script_for_pi_creates"] == [f"calibrated/{eb}.ms.split.cal" for eb in NRAO_EBS]
    assert member["split_creates"] == []  # the manual scriptForPI splits itself
    member_dir = package / "sg_ouss_id" / "group_ouss_id" / member["name"]
    assert member["sizes"] == _sizes_on_disk(member_dir)
    assert from_dir["source"] == "directory" and from_dir["doubled"] is False

    from_chunks = _inspect(capsys, nrao_split / "chunks")
    assert from_chunks["source"] == "chunks"
    assert from_chunks["projects"] == from_dir["projects"]
    chunk_files = sorted((nrao_split / "chunks").glob("*.tar"))
    assert _inspect(capsys, *chunk_files)["projects"] == from_dir["projects"]


def test_doubled_project_directory(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = nrao_split / "out" / "2013.1.00123.S"
    doubled = tmp_path / "download" / "2013.1.00123.S" / "2013.1.00123.S"
    shutil.copytree(package, doubled)
    found = _inspect(capsys, tmp_path / "download")
    assert found["doubled"] is True
    assert found["projects"] == _inspect(capsys, package)["projects"]
    assert cli_main(["inspect", str(tmp_path / "download" / "2013.1.00123.S")]) == 0
    assert "doubled project directory" in capsys.readouterr().out


def test_staged_pipeline_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    staged = tmp_path / PROJECT
    assert cli_main(["stage", str(build_run(tmp_path)), str(staged)]) == 0
    member = _only_member(_inspect(capsys, staged))
    assert member["calibration"] == "pipeline"
    assert member["uid"] == MOUS
    assert member["ebs"] == ["uid___A002_X85c183_X36f", "uid___A002_X85c183_X60b"]
    assert member["script_for_pi"] == f"script/member.{MOUS}.scriptForPI.py"
    assert member["script_for_pi_creates"] == [
        f"calibrated/working/{eb}.ms" for eb in member["ebs"]
    ]
    assert member["split_creates"] == [  # issue 21: what qa2 split then makes of them
        f"calibrated/{eb}.ms.split.cal{end}" for eb in member["ebs"] for end in ("", ".source")
    ]
    assert member["sizes"] == _sizes_on_disk(staged / MEMBER)

    monkeypatch.chdir(tmp_path)
    assert cli_main(["inspect", PROJECT]) == 0  # a relative path, as typed in a shell
    text = capsys.readouterr().out
    assert f"project {PROJECT}" in text and "pipeline calibration, 2 EB(s)" in text
    assert "science_goal.uid___A001_X122_X1f" in text
    first = f"calibrated/{member['ebs'][0]}.ms.split.cal"
    said = " ".join(text.split())
    assert f"then 'qa2 split calibrated' (science spws, targets) makes: {first}," in said


def _check_schema(value: object, schema: object, where: str = "$") -> None:
    """``schema``: a type, a tuple of types, [item schema] or {key: schema} (exact keys)."""
    if isinstance(schema, dict):
        assert isinstance(value, dict) and set(value) == set(schema), where
        for key, sub in schema.items():
            _check_schema(value[key], sub, f"{where}.{key}")
    elif isinstance(schema, list):
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            _check_schema(item, schema[0], f"{where}[{i}]")
    else:
        assert isinstance(value, schema), f"{where}: {value!r}"


MEMBER_SCHEMA = {
    "name": str, "uid": (str, type(None)), "calibration": str, "ebs": [str],
    "script_for_pi": (str, type(None)), "script_for_pi_creates": [str],
    "split_creates": [str], "files": int,
    "size": int, "sizes": dict,
}  # fmt: skip
SCHEMA = {
    "source": str, "paths": [str], "doubled": bool,
    "projects": [{"project": str, "size": int, "science_goals": [
        {"name": str, "uid": (str, type(None)), "groups": [
            {"name": str, "uid": (str, type(None)), "members": [MEMBER_SCHEMA]}]}]}],
}  # fmt: skip


def test_json_follows_the_documented_schema(
    nrao_split: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _inspect(capsys, nrao_split / "chunks")
    envelope = {"ok": bool, "warnings": [str], "problems": [dict]}  # every --json (README)
    _check_schema(found, {**envelope, **SCHEMA})
    assert found["projects"][0]["science_goals"][0]["uid"] is None  # sg_ouss_id
    doc = (Path(__file__).parents[1] / "src" / "almaqa2" / "transfer" / "inspection.py").read_text()
    for key in (*SCHEMA, *MEMBER_SCHEMA):
        assert f'"{key}"' in doc, f"{key} is not documented in inspection.py"


@pytest.mark.parametrize("what", ["missing", "no-project", "not-a-tar"])
def test_bad_input(what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / what
    if what == "no-project":
        (target / "data").mkdir(parents=True)
        (target / "data" / "file.txt").write_text("x")
    elif what == "not-a-tar":
        target = tmp_path / "2013.1.00123.S_uid___A001_X13e_X1fe_001_of_001.tar"
        target.write_text("not a tar")
    assert cli_main(["inspect", str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in "".join(err.split()), "the message names the path (wrapped or not)"
    assert "Traceback" not in err
