"""Issue 18: sizes as typed, binary or decimal as the unit says, shown back in that unit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from almaqa2.cli import main
from almaqa2.errors import InputError
from almaqa2.sizes import parse_size, size_in


@pytest.mark.parametrize(
    ("typed", "size", "shown"),
    [
        ("10G", 10 << 30, "10.0 GiB"),  # as split and tar read it
        ("10GiB", 10 << 30, "10.0 GiB"),
        ("10GB", 10_000_000_000, "10.0 GB"),
        ("10 gb", 10_000_000_000, "10.0 GB"),
        ("100K", 102_400, "100.0 KiB"),
        ("100kB", 100_000, "100.0 KB"),
        ("1.5M", 1_572_864, "1.5 MiB"),
        ("20480", 20_480, "20480 B"),
        ("20480B", 20_480, "20480 B"),
    ],
)
def test_units_as_written(typed: str, size: int, shown: str) -> None:
    assert parse_size(typed) == size
    assert size_in(size, typed) == shown


@pytest.mark.parametrize("typed", ["10X", "G", "-5G", "1e9", "10 GiBs"])
def test_not_a_size(typed: str) -> None:
    with pytest.raises(InputError, match="is not a size"):
        parse_size(typed)


def test_tarsplit_shows_chunks_in_the_unit_typed(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = nrao_split / "out" / "2013.1.00123.S"
    argv = ["tarsplit", str(package), "--out", str(tmp_path), "--dry-run"]
    for typed, unit in (("20K", "KiB"), ("20KB", "KB")):
        assert main([*argv, "--max-size", typed]) == 0
        sizes = [line.split()[3:5] for line in capsys.readouterr().out.splitlines()
                 if line.startswith("would write")]  # fmt: skip
        assert sizes and all(u == unit for _, u in sizes), sizes
    assert main([*argv, "--max-size", "20KB", "--json"]) == 0
    chunks = json.loads(capsys.readouterr().out)["chunks"]
    assert max(c["size"] for c in chunks) <= 20_000 < parse_size("20K")
