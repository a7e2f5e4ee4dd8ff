"""Issue 20: ``md5pair`` hashes two streams at once, so that a chunk and its members are
checked from the same bytes.  Every md5 it gives must be hashlib's: fed in any pieces, the
two streams at any offsets from each other (a member's bytes begin anywhere in a chunk
read in pieces), and from more than one thread (it lets the GIL go)."""

from __future__ import annotations

import hashlib
import threading

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from almaqa2.md5pair import Md5, update_both

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
@given(_DATA, _DATA, st.lists(st.tuples(_DATA, st.booleans(), st.booleans()), max_size=6))
def test_two_streams_fed_together_are_each_hashlibs(
    first: bytes, second: bytes, pieces: list[tuple[bytes, bool, bool]]
) -> None:
    """Each stream starts with bytes of its own (so their blocks begin at different
    offsets), then takes pieces, together or alone."""
    one, two = Md5(first), Md5(second)
    one_seen, two_seen = hashlib.md5(first), hashlib.md5(second)
    for piece, together, to_one in pieces:
        if together:
            update_both(one, two, piece)
            one_seen.update(piece)
            two_seen.update(piece)
        else:
            (one if to_one else two).update(piece)
            (one_seen if to_one else two_seen).update(piece)
        assert (one.hexdigest(), two.hexdigest()) == (one_seen.hexdigest(), two_seen.hexdigest())


def test_large_pieces_hashed_in_threads_at_once_are_hashlibs() -> None:
    """Pieces of 8 KB and more are hashed with the GIL let go: two threads at once."""
    data = [bytes(range(256)) * (4099 * n) for n in (1, 2)]
    found: dict[int, tuple[str, str]] = {}

    def hash_both(n: int) -> None:
        one, two = Md5(b"x" * n), Md5()
        for _ in range(3):
            update_both(one, two, data[n])
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
        update_both(one, one, b"data")
    with pytest.raises(TypeError):
        update_both(one, hashlib.md5(), b"data")  # type: ignore[arg-type]
