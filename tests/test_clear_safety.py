"""``qa2 clear`` under hostile trees (issue 13, item 1): an ASDM is never deleted at any
depth, nothing outside the directory is touched, and only real EB and calibrated/
directories are cleared.  A property test throws random trees at it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from almaqa2.cli import main as cli_main
from almaqa2.helpers import clear
from test_errors import _as_nobody

from conftest import tree_state

EB = "uid___A002_Xdd9c61_X66d"
OTHER = "uid___A002_X4sda4d_Xa12"


def _asdm(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "ASDM.xml").write_text("<ASDM/>")
    (path / "Main.xml").write_text("<Main/>")
    return path


def _eb_dir(path: Path) -> Path:
    _asdm(path / EB)
    (path / f"{EB}.ms.scriptForCalibration.py").write_text("# calibration\n")
    (path / f"{EB}.ms").mkdir()
    (path / f"{EB}.ms" / "table.dat").write_bytes(b"t")
    (path / "bandpass.last").write_text("last\n")
    return path


def test_asdms_below_the_top_level_are_kept(tmp_path: Path) -> None:
    eb_dir = _eb_dir(tmp_path / "X66d")
    nested = _asdm(eb_dir / "raw" / EB)
    other = _asdm(eb_dir / "sub" / "deeper" / OTHER)
    (eb_dir / "raw" / "notes.txt").write_text("scratch\n")
    kept = {p: tree_state(p) for p in (nested, other)}
    assert cli_main(["clear", str(eb_dir), "--yes"]) == 0
    assert {p: tree_state(p) for p in kept} == kept
    assert not (eb_dir / "raw" / "notes.txt").exists() and not (eb_dir / "bandpass.last").exists()


def test_an_asdm_appearing_after_the_listing_is_kept(tmp_path: Path) -> None:
    eb_dir = _eb_dir(tmp_path / "X66d")
    late = eb_dir / "late"
    late.mkdir()
    (late / "Main.xml").write_text("<Main/>")
    clearing = clear.plan(eb_dir)
    assert eb_dir / "late" in clearing.delete
    (late / "ASDM.xml").write_text("<ASDM/>")  # the ASDM finishes unpacking meanwhile
    clear.apply(clearing)
    assert sorted(p.name for p in late.iterdir()) == ["ASDM.xml", "Main.xml"]


def test_what_cannot_be_deleted_stops_the_clearing_in_one_sentence_naming_it(
    tmp_path: Path,
) -> None:
    """A table another user made in the reducer's EB directory (a shared area): its file
    cannot be unlinked.  It said the system's 'Permission denied: table.dat; fix this',
    naming only the file's last part (and on a read-only file system: free some space)."""
    if os.geteuid() != 0:
        raise RuntimeError("this test drops root's rights to make a file really undeletable")
    eb_dir = _eb_dir(tmp_path / "X66d")
    for path in [tmp_path, *(p for p in tmp_path.parents if p.is_relative_to("/tmp"))]:
        path.chmod(path.stat().st_mode | 0o055)
    for path in [eb_dir, *eb_dir.rglob("*")]:
        os.chown(path, 65534, 65534)
    table = eb_dir / f"{EB}.ms"
    os.chown(table, 0, 0)  # root's: nobody cannot unlink its files
    table.chmod(0o755)
    code, err = _as_nobody(["clear", str(eb_dir), "--yes"])
    said = " ".join(err.split())
    assert code == 2 and "Traceback" not in err, err
    assert (
        f"the clearing stopped at what it could not delete (Permission denied): {table}/table.dat;"
        in said
    )
    assert "writable by you" in said
    assert not (eb_dir / "bandpass.last").exists(), "what went before it is deleted"
    assert (table / "table.dat").exists() and (eb_dir / EB / "ASDM.xml").exists()


def test_a_symlink_named_calibrated_is_not_followed(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work\n")
    (precious / "x.ms.split.cal").mkdir()
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "calibrated").symlink_to(precious)
    before = tree_state(precious)
    assert cli_main(["clear", str(tmp_path / "x" / "calibrated"), "--yes"]) == 2
    assert tree_state(precious) == before


def test_a_directory_named_calibrated_by_chance_is_refused(tmp_path: Path) -> None:
    calibrated = tmp_path / "calibrated"
    calibrated.mkdir()
    (calibrated / "paper.tex").write_text("draft\n")
    before = tree_state(calibrated)
    assert cli_main(["clear", str(calibrated), "--yes"]) == 2
    assert tree_state(calibrated) == before


def test_a_flat_sb_with_a_stray_script_is_refused(tmp_path: Path) -> None:
    sb = _eb_dir(tmp_path / "SB")
    (sb / "scriptForImaging.py").write_text("# imaging\n")
    (sb / "IRC10216.clean.fits").write_bytes(b"SIMPLE")
    (sb / "notes.txt").write_text("notes\n")
    before = tree_state(sb)
    assert cli_main(["clear", str(sb), "--yes"]) == 2
    assert tree_state(sb) == before


def test_a_lone_script_does_not_make_an_eb_directory(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / f"{EB}.ms.scriptForCalibration.py").write_text("# stray\n")
    (work / "analysis.py").write_text("# mine\n")
    before = tree_state(work)
    assert cli_main(["clear", str(work), "--yes"]) == 2
    assert tree_state(work) == before


# -- the property: random trees ------------------------------------------------------------

_NAMES = st.sampled_from(["a", "b", "c.ms", "d.plots", "e.last", "raw", "sub"])


@st.composite
def _trees(draw: st.DrawFn) -> list[tuple[str, str]]:
    """(kind, relative path) items: files, ASDMs, links (in and out) and scripts at any
    depth below an EB directory."""
    items = []
    for _ in range(draw(st.integers(0, 12))):
        depth = draw(st.lists(_NAMES, min_size=0, max_size=3))
        kind = draw(st.sampled_from(["file", "asdm", "link-out", "link-in", "script", "dir"]))
        name = draw(_NAMES) + str(len(items))
        items.append((kind, "/".join([*depth, name])))
    return items


def _build(eb_dir: Path, outside: Path, items: list[tuple[str, str]]) -> None:
    for kind, rel in items:
        path = eb_dir / rel
        if path.parent.exists() and not path.parent.is_dir():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            continue
        if kind == "file":
            path.write_text(rel)
        elif kind == "dir":
            path.mkdir()
        elif kind == "asdm":
            _asdm(path)
        elif kind == "link-out":
            path.symlink_to(outside)
        elif kind == "link-in":
            path.symlink_to(eb_dir / EB)
        else:  # another EB's script, somewhere below
            path.with_name(f"{OTHER}.ms.scriptForCalibration.py").write_text("# stray\n")


def _asdm_states(root: Path) -> dict[str, object]:
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        if "ASDM.xml" in files:
            found[os.path.relpath(dirpath, root)] = tree_state(Path(dirpath))
    return found


@settings(max_examples=60, deadline=None)
@given(items=_trees())
def test_property_every_asdm_and_everything_outside_survive(
    items: list[tuple[str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as top:
        root = Path(top)
        outside = root / "outside"
        outside.mkdir()
        (outside / "keep.txt").write_text("not ours\n")
        eb_dir = _eb_dir(root / "X66d")
        _build(eb_dir, outside, items)
        asdms = _asdm_states(eb_dir)
        before_outside = tree_state(outside)
        code = cli_main(["clear", str(eb_dir), "--yes"])
        assert code in (0, 2)
        assert tree_state(outside) == before_outside
        assert _asdm_states(eb_dir) == asdms
