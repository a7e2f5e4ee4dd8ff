"""Issue 20: ``md5pair`` hashes many streams at once: chunks and their members from the same
bytes, files side by side; eight at once in vector lanes where the CPU has AVX2, else two
by two.  Every md5 it gives must be hashlib's: fed in any pieces, the streams at any
offsets from each other (a member's bytes begin anywhere in a chunk read in pieces), fed
the same bytes or others of any length, and from more than one thread (it lets the GIL
go)."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from almaqa2 import manifest, md5pair
from almaqa2.md5pair import Md5, hexdigests, update_many

_DATA = st.binary(max_size=700)
_FEEDS = st.lists(st.tuples(st.integers(0, 19), st.integers(0, 3000)), max_size=20)
"""A round of feeds: (which stream, how many bytes)."""


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
        update_many([(one, piece), (two, other)])
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
            update_many([(one, data[n]), (two, data[n])])
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
    with pytest.raises(ValueError, match="an Md5 is fed twice"):
        update_many([(one, b"data"), (one, b"data")])
    with pytest.raises(TypeError):
        update_many([(one, b"data"), (hashlib.md5(), b"data")])  # type: ignore[list-item]


@settings(max_examples=300)
@given(st.lists(_DATA, max_size=20), st.lists(_FEEDS, max_size=4))
def test_many_streams_fed_together_are_each_hashlibs(
    firsts: list[bytes], rounds: list[list[tuple[int, int]]]
) -> None:
    """Up to 20 streams, each begun with bytes of its own, fed together round after
    round, each its own bytes, of its own length: the lanes take a stream as another
    ends, and the last few go two by two."""
    mine = [Md5(first) for first in firsts]
    theirs = [hashlib.md5(first) for first in firsts]
    for feeds in rounds:
        fed = {n % len(mine): random.Random(n).randbytes(size) for n, size in feeds} if mine else {}
        update_many([(mine[n], memoryview(data)) for n, data in fed.items()])
        for n, data in fed.items():
            theirs[n].update(data)
        assert [m.hexdigest() for m in mine] == [t.hexdigest() for t in theirs]


def test_many_long_streams_of_every_length_are_hashlibs() -> None:
    """Nine streams, more than the lanes, of lengths all different (a lane given the next
    stream as its own ends), some past 8 KB (hashed with the GIL let go)."""
    data = os.urandom(1 << 17)
    mine = [Md5(data[:n]) for n in range(9)]
    update_many([(md5, data[: 1000 * n * n + n]) for n, md5 in enumerate(mine)])
    assert [m.hexdigest() for m in mine] == [
        hashlib.md5(data[:n] + data[: 1000 * n * n + n]).hexdigest() for n in range(9)
    ]


def test_an_md5_fed_twice_at_once_is_refused() -> None:
    one, two = Md5(), Md5()
    with pytest.raises(ValueError, match="fed twice"):
        update_many([(one, b"a" * 100), (two, b"b"), (one, b"c")])
    with pytest.raises(TypeError):
        update_many([(one, b"data", b"more")])  # type: ignore[list-item]
    update_many([(one, b"data")])  # the refusal left no md5 marked as being fed
    assert one.hexdigest() == hashlib.md5(b"data").hexdigest()


def test_the_lanes_are_used_where_the_cpu_has_avx2() -> None:
    flags = next(
        (line.split() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("flags")),
        [],
    )  # fmt: skip
    has_avx2 = "avx2" in flags and os.uname().machine == "x86_64"
    assert md5pair.LANES == 8 if has_avx2 else md5pair.LANES == 0


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_many_small_pieces_hashed_together_are_hashlibs(pieces: list[bytes]) -> None:
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
