"""Issue 20: ``md5pair`` hashes two streams at once: a chunk and its members from the same
bytes, two files side by side.  Every md5 it gives must be hashlib's: fed in any pieces,
the two streams at any offsets from each other (a member's bytes begin anywhere in a chunk
read in pieces), fed the same bytes or others of any length, and from more than one thread
(it lets the GIL go)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from almaqa2 import manifest
from almaqa2.md5pair import Md5, hexdigests, update_two

_DATA = st.binary(max_size=700)


@given(st.lists(_DATA, max_size=6))
def test_one_stream_is_hashlibs(pieces: list[bytes]) -> None:
    mine, theirs = Md5(), hashlib.md5()
    for piece in pieces:
        mine.update(memoryview(piece))
        theirs.update(piece)
    assert mine.hexdigest() == theirs.hexdigest()
    assert mine.digest() == theirs.digest()
    assert Md5(b"".join(pieces)).hexdigest() == theirs.hexdigest()


@settings(max_examples=300)
@given(_DATA, _DATA, st.lists(st.tuples(_DATA, _DATA, st.sampled_from(["same", "two", "one"]))))
def test_two_streams_fed_together_are_each_hashlibs(
    first: bytes, second: bytes, pieces: list[tuple[bytes, bytes, str]]
) -> None:
    """Each stream starts with bytes of its own (so their blocks begin at different
    offsets), then takes pieces together (the same bytes, or each its own) or alone."""
    one, two = Md5(first), Md5(second)
    one_seen, two_seen = hashlib.md5(first), hashlib.md5(second)
    for piece, other, how in pieces:
        if how == "one":
            one.update(piece)
            one_seen.update(piece)
            continue
        other = piece if how == "same" else other
        update_two(one, piece, two, other)
        one_seen.update(piece)
        two_seen.update(other)
        assert (one.hexdigest(), two.hexdigest()) == (one_seen.hexdigest(), two_seen.hexdigest())
    assert (one.hexdigest(), two.hexdigest()) == (one_seen.hexdigest(), two_seen.hexdigest())


def test_large_pieces_hashed_in_threads_at_once_are_hashlibs() -> None:
    """Pieces of 8 KB and more are hashed with the GIL let go: two threads at once."""
    data = [bytes(range(256)) * (4099 * n) for n in (1, 2)]
    found: dict[int, tuple[str, str]] = {}

    def hash_both(n: int) -> None:
        one, two = Md5(b"x" * n), Md5()
        for _ in range(3):
            update_two(one, data[n], two, data[n])
        found[n] = one.hexdigest(), two.hexdigest()

    threads = [threading.Thread(target=hash_both, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in (0, 1):
        assert found[n] == (
            hashlib.md5(b"x" * n + data[n] * 3).hexdigest(),
            hashlib.md5(data[n] * 3).hexdigest(),
        )


def test_one_md5_cannot_take_the_same_bytes_twice_at_once() -> None:
    one = Md5()
    with pytest.raises(ValueError, match="the same Md5"):
        update_two(one, b"data", one, b"data")
    with pytest.raises(TypeError):
        update_two(one, b"data", hashlib.md5(), b"data")  # type: ignore[arg-type]


@given(st.lists(st.binary(max_size=300), max_size=7))
def test_many_small_pieces_hashed_two_at_a_time_are_hashlibs(pieces: list[bytes]) -> None:
    assert hexdigests(pieces) == [hashlib.md5(p).hexdigest() for p in pieces]
    assert hexdigests([memoryview(p) for p in pieces]) == hexdigests(pieces)


def test_the_hasher_hashes_large_files_side_by_side_each_as_hashlib(tmp_path: Path) -> None:
    """A ``Hasher`` thread hashes two large files at once (and batches of small ones two
    at a time): files of every size come out as hashlib's, and one that fails is named
    without spoiling the one hashed beside it."""
    sizes = [0, 1, 70_000, 1 << 20, (3 << 20) + 7, 200_000, 65_536, 5_000_000, 123]
    files = {}
    for n, size in enumerate(sizes):
        files[str(tmp_path / f"f{n}")] = data = os.urandom(size)
        (tmp_path / f"f{n}").write_bytes(data)
    with manifest.Hasher() as hasher:
        for path, data in files.items():
            hasher.add(path, len(data))
        found = hasher.results()
    assert found == {path: hashlib.md5(data).hexdigest() for path, data in files.items()}

    gone = str(tmp_path / "gone")
    with pytest.raises(FileNotFoundError) as raised, manifest.Hasher() as hasher:
        for path, data in files.items():
            hasher.add(path, len(data))
        hasher.add(gone, 1 << 21)
        hasher.results()
    assert raised.value.filename == gone
