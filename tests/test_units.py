"""Pure pieces: UIDs, directory naming for appends, classification rules, manifest lines."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given

from almaqa2 import manifest
from almaqa2.errors import DestinationError, InputError
from almaqa2.package.naming import units
from almaqa2.package.rules import NEVER, Classifier, style_for
from almaqa2.package.scan import Kind
from almaqa2.uid import short_name, to_fs

parts = st.from_regex(r"X[0-9a-f]{1,7}", fullmatch=True)


@given(st.from_regex(r"A00[0-9]", fullmatch=True), parts, parts)
def test_uid_forms_agree(archive: str, a: str, b: str) -> None:
    fs = to_fs(f"uid://{archive}/{a}/{b}")
    assert fs == f"uid___{archive}_{a}_{b}"
    assert to_fs(fs) == fs
    assert short_name(fs) == b


@pytest.mark.parametrize("bad", ["uid://A002/X1", "X8c", "uid___A002_X1_X2.ms", ""])
def test_bad_uids_are_refused(bad: str) -> None:
    with pytest.raises(InputError):
        to_fs(bad)


def test_fresh_names_use_placeholders_or_uids() -> None:
    assert units((None, None, None), "", {}, "p").member_path.as_posix() == (
        "sg_ouss_id/group_ouss_id/member_ouss_id"
    )
    named = units(("uid___A001_X1_X2", None, "uid___A001_X1_X4"), "", {}, "p")
    assert named.member_path.as_posix() == (
        "science_goal.uid___A001_X1_X2/group_ouss_id/member.uid___A001_X1_X4"
    )


@given(st.integers(min_value=1, max_value=30))
def test_appended_members_are_numbered_after_the_highest(n: int) -> None:
    members = ["member_ouss_id", *(f"member_ouss_id{i}" for i in range(2, n + 1))]
    existing = {"sg_ouss_id": {"group_ouss_id": [], "group_ouss_id2": members}}
    new = units((None, None, None), "member", existing, "p")
    assert (new.gous, new.member, new.new_depth) == ("group_ouss_id2", f"member_ouss_id{n + 1}", 3)
    assert new.new_unit.as_posix() == f"sg_ouss_id/group_ouss_id2/member_ouss_id{n + 1}"


def test_appended_group_and_taken_uid() -> None:
    existing = {"sg_ouss_id": {"group_ouss_id": ["member_ouss_id"]}}
    assert units((None, None, None), "group", existing, "p").gous == "group_ouss_id2"
    taken = {"sg_ouss_id": {"group_ouss_id": ["member.uid___A001_X1_X4"]}}
    with pytest.raises(DestinationError):
        units((None, None, "uid___A001_X1_X4"), "member", taken, "p")


@pytest.mark.parametrize(
    ("where", "kind", "name", "style", "dest"),
    [
        ("eb", Kind.TABLE, "uid___A002_X1_X8c.ms.split", "cycle0-nopipe", "raw/{name}"),
        ("eb", Kind.TABLE, "uid___A002_X1_X8c.ms.split", "cycle2-nopipe", NEVER),
        (
            "eb",
            Kind.TABLE,
            "uid___A002_X1_X8c.ms.split.flux_inf",
            "cycle2-nopipe",
            "calibration/{uid}.calibration/{name}",
        ),
        ("eb", Kind.TABLE, "target.image.tt0", "cycle2-nopipe", NEVER),
        ("sb", Kind.FILE, "cube.pb.tt0.fits", "cycle3-nopipe", "product/{name}.gz"),
        ("sb", Kind.FILE, "cube.pb.tt0.fits", "cycle2-nopipe", "product/{name}"),
        ("sb", Kind.FILE, "cont.mask.fits", "cycle4-nopipe", "product/{name}.gz"),
        ("sb", Kind.FILE, "cube.pbcor.fits", "cycle4-nopipe", "product/{name}"),
        ("sb", Kind.FILE, "uid___A002_X1_X8c.ms.split.fluxscale", "cycle2-nopipe", NEVER),
        (
            "eb",
            Kind.FILE,
            "uid___A002_X1_X8c.ms.flagcmd.png",
            "cycle2-nopipe",
            "calibration/{uid}.calibration.plots/{name}",
        ),
        ("sb", Kind.FILE, "scriptForImagingPrep.py", "cycle3-nopipe", "script/{name}"),
        ("qa2", Kind.FILE, "qa2_part1.png", "cycle2-nopipe", "qa/{uid}__{name}"),
    ],
)
def test_rules(where: str, kind: Kind, name: str, style: str, dest: str | None) -> None:
    match = Classifier(style_for(style, False), ("uid___A002_X1_X8c",)).classify(where, kind, name)
    assert match is not None and match.dest == dest


def test_noms_decides_the_legacy_style() -> None:
    assert style_for("", True).noms and not style_for("", False).noms


@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1), max_size=5))
def test_manifest_round_trip(names: list[str]) -> None:
    digests = {name: hashlib.md5(name.encode()).hexdigest() for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        written = manifest.write(Path(tmp), "2011.0.00229.S", digests)
        assert manifest.read(written) == {f"2011.0.00229.S/{k}": v for k, v in digests.items()}
