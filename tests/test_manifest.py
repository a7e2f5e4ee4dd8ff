"""The manifest as written: what ``md5sum -c`` reads, and its size counted beforehand (the
ticket's expected size) without writing it."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from almaqa2 import manifest

# names as a file system has them: any character but / and NUL, undecodable bytes included
_NAME = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_characters="/\0", blacklist_categories=["Cs"]),
        st.sampled_from("\\\n\r"),
        st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF),  # os.fsdecode's bytes
    ),
    min_size=1,
    max_size=20,
)
_REL = st.lists(_NAME, min_size=1, max_size=3).map("/".join)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_REL, st.just(32 * "0"), max_size=30), st.integers(0, 3))
def test_the_size_counted_is_the_size_written(
    tmp_path_factory: pytest.TempPathFactory, digests: dict[str, str], plain: int
) -> None:
    """Plain names (counted at once), names md5sum escapes (line by line), both mixed."""
    digests |= {f"dir{n}/table.f{n}": 32 * "f" for n in range(plain)}
    folder = tmp_path_factory.mktemp("m")
    written = manifest.write(folder, "2019.1.01234.S", digests)
    assert written.stat().st_size == manifest.size("2019.1.01234.S", set(digests))
    assert manifest.read(written) == {f"2019.1.01234.S/{r}": d for r, d in digests.items()}


def test_md5sum_checks_a_manifest_written_in_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines made (and counted) a piece at a time, plain and escaped pieces, each path
    once, sorted."""
    monkeypatch.setattr(manifest, "_PIECE", 7)
    package = tmp_path / "2019.1.01234.S"
    digests = {}
    for n in range(30):
        name = f"t{n:02d}" + ("\\back" if n % 11 == 3 else "") + ("\nline" if n == 20 else "")
        (package / "dir").mkdir(parents=True, exist_ok=True)
        (package / "dir" / name).write_bytes(data := os.urandom(n))
        digests[f"dir/{name}"] = hashlib.md5(data).hexdigest()
    written = manifest.write(package, package.name, digests)
    lines = written.read_bytes().splitlines()
    assert len(lines) == 30 and sum(line.startswith(b"\\") for line in lines) == 4
    assert written.stat().st_size == manifest.size(package.name, digests)  # counted in pieces
    done = subprocess.run(["md5sum", "-c", "--strict", str(written)], cwd=tmp_path,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0 and done.stdout.count(": OK") == 30, done.stdout + done.stderr
    assert manifest.read(written) == {f"{package.name}/{r}": d for r, d in digests.items()}


def test_each_small_file_s_md5_is_its_own_when_a_batch_is_hashed_at_once(tmp_path: Path) -> None:
    """Small files' bytes are held and hashed together at the end of their batch: each md5
    must go back to its own file, past files that could not be read, past copies unlike
    their source, and past a file grown beyond small (hashed by itself)."""
    items: list[tuple[str, int, str | None, bool]] = []
    expected: list[str | type[OSError] | None] = []
    for i in range(40):
        path, data = tmp_path / f"f{i}", os.urandom(i * 97)
        kind = i % 5
        if kind == 1:  # missing
            items.append((str(path), 10, None, False))
            expected.append(OSError)
            continue
        if kind == 4:  # grown since it was listed
            data = os.urandom(manifest.SMALL + 10)
        path.write_bytes(data)
        source = tmp_path / f"s{i}"
        if kind == 2:  # a copy to make from its source
            source.write_bytes(data)
            path.unlink()
            items.append((str(path), len(data), str(source), True))
        elif kind == 3:  # a copy made: equal to its source every other time
            source.write_bytes(data if i % 2 else data + b"!")
            items.append((str(path), len(data), str(source), False))
        else:
            items.append((str(path), len(data) if kind == 0 else 10, None, False))
        equal = kind != 3 or i % 2
        expected.append(hashlib.md5(data).hexdigest() if equal else None)
    found = manifest._hash_small(items)
    for (name, *_), want, got in zip(items, expected, found, strict=True):
        if want is OSError:
            assert isinstance(got, OSError), name
        else:
            assert got == want, name
    assert (tmp_path / "f2").read_bytes() == (tmp_path / "s2").read_bytes()
