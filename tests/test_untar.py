"""``qa2 untar``: every unsafe member of a crafted tar is refused before it can write outside
the target; good chunks are extracted and checked; bad ones leave nothing behind."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from almaqa2.cli import main

from conftest import tree_state

P = "2013.1.00123.S"
CHUNK = f"{P}_2012_06_20_001_of_001.tar"


def _untar(*argv: object) -> int:
    return main(["untar", *map(str, argv)])


def test_good_chunks_are_extracted_and_match_the_manifest(
    nrao_split: Path, chunks: Path, out: Path
) -> None:
    assert _untar(chunks, "--out", out) == 0
    assert os.listdir(out) == [P], "the package and nothing else (no staging left)"
    check = subprocess.run(
        ["md5sum", "-c", "--strict", f"{P}/manifest.md5"], cwd=out, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    original = nrao_split / "out" / P
    for path in original.rglob("*"):
        copy = out / P / path.relative_to(original)
        assert copy.is_dir() if path.is_dir() else copy.read_bytes() == path.read_bytes()
    assert _untar(chunks, "--out", out) == 2, "never over an existing package"


def _flip(chunk: Path) -> None:
    with tarfile.open(chunk) as tar:
        member = next(m for m in tar if m.size > 0)
    with open(chunk, "r+b") as f:
        f.seek(member.offset_data)
        byte = f.read(1)[0]
        f.seek(member.offset_data)
        f.write(bytes([byte ^ 0xFF]))


def _resum(chunk: Path) -> None:
    digest = hashlib.md5(chunk.read_bytes()).hexdigest()
    chunk.with_name(f"{chunk.name}.md5sum").write_text(f"{digest}  {chunk.name}\n")
    chunk.with_name(f"{P}_uid___A001_X13e_X1fe.md5sums").unlink(missing_ok=True)


@pytest.mark.parametrize("also_fix_md5", [False, True], ids=["chunk-md5", "manifest"])
def test_a_corrupt_chunk_extracts_nothing(
    chunks: Path, out: Path, also_fix_md5: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = sorted(chunks.glob("*.tar"))[1]
    _flip(damaged)
    if also_fix_md5:  # the chunk's md5 agrees: only the manifest can tell
        _resum(damaged)
    capsys.readouterr()
    assert _untar(chunks, "--out", out) == 1
    said = " ".join(capsys.readouterr().out.split())
    assert ("corrupt: " + str(damaged) in said) is not also_fix_md5
    assert f"corrupt: {P}/" in said
    assert os.listdir(out) == []


def _craft(folder: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """A chunk made of exactly these members, with a correct ``.md5sum`` beside it."""
    chunk = folder / CHUNK
    with tarfile.open(chunk, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    _resum(chunk)
    return chunk


def _file(name: str, data: bytes = b"payload\n") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def _device(name: str, kind: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = kind, 1, 3
    return info, b""


# Each case: the members after a harmless first file; ``outside`` is a directory beside
# --out with a victim file in it.  Staging is --out/<hidden dir>, so ../../../ reaches it.
CASES: dict[str, tuple[str, Callable[[Path], list[tuple[tarfile.TarInfo, bytes]]]]] = {
    "absolute path": (
        "an absolute or empty name",
        lambda outside: [_file(str(outside / "evil.txt"))],
    ),
    "dot-dot": (
        "climbs out with '..'",
        lambda outside: [_file(f"{P}/../../../outside/evil.txt")],
    ),
    "other top directory": (
        "outside the package's directory",
        lambda outside: [_file("elsewhere/evil.txt")],
    ),
    "symlink absolute": (
        "a symbolic link, not a file or directory",
        lambda outside: [_link(f"{P}/link", str(outside))],
    ),
    "symlink outside": (
        "a symbolic link, not a file or directory",
        lambda outside: [_link(f"{P}/link", "../../../outside")],
    ),
    "hard link absolute": (
        "a hard link, not a file or directory",
        lambda outside: [_link(f"{P}/hard", str(outside / "victim.txt"), tarfile.LNKTYPE)],
    ),
    "hard link outside": (
        "a hard link, not a file or directory",
        lambda outside: [_link(f"{P}/hard", "../../outside/victim.txt", tarfile.LNKTYPE)],
    ),
    "character device": (
        "a character device",
        lambda outside: [_device(f"{P}/null", tarfile.CHRTYPE)],
    ),
    "block device": ("a block device", lambda outside: [_device(f"{P}/disk", tarfile.BLKTYPE)]),
    "fifo": ("a FIFO", lambda outside: [_device(f"{P}/pipe", tarfile.FIFOTYPE)]),
    "overwrite through a link": (
        "a symbolic link, not a file or directory",
        lambda outside: [
            _link(f"{P}/victim.txt", "../../../outside/victim.txt"),
            _file(f"{P}/victim.txt", b"overwritten\n"),
        ],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_unsafe_members_are_refused(
    case: str, tmp_path: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("keep me\n")
    before = tree_state(outside)
    folder = tmp_path / "chunks"
    folder.mkdir()
    reason, members = CASES[case]
    chunk = _craft(folder, [_file(f"{P}/first.txt"), *members(outside)])
    capsys.readouterr()
    assert _untar(chunk, "--out", out) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "not safe to extract" in err and CHUNK in err and "Traceback" not in err
    assert reason in err
    assert os.listdir(out) == [], "nothing extracted, no staging left"
    assert (outside / "victim.txt").read_text() == "keep me\n"
    assert tree_state(outside) == before
    assert sorted(os.listdir(tmp_path)) == ["chunks", "out", "outside"]


def test_an_existing_link_in_place_of_the_package_is_not_followed(
    chunks: Path, out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / P).symlink_to(elsewhere)
    assert _untar(chunks, "--out", out) == 2
    assert "already there" in capsys.readouterr().err
    assert os.listdir(elsewhere) == [] and os.listdir(out) == [P]


def test_chunks_of_two_packages_are_refused(
    chunks: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = sorted(chunks.glob("*.tar"))[0]
    shutil.copy(first, chunks / CHUNK)
    assert _untar(chunks, "--out", out) == 2
    assert "belong to 2 packages" in " ".join(capsys.readouterr().err.split())
