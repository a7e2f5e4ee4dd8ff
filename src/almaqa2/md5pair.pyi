from collections.abc import Sequence
from typing import TypeAlias

Buffer: TypeAlias = bytes | bytearray | memoryview

LANES: int
"""Streams hashed at once in the lanes of this CPU's vector registers (8 with AVX2), or 0:
then two at a time, interleaved."""

class Md5:
    """An md5 being computed, as hashlib.md5(data)."""

    def __init__(self, data: Buffer = ...) -> None: ...
    def update(self, data: Buffer, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...

def hexdigests(pieces: Sequence[Buffer], /) -> list[str]:
    """The md5 of each piece, in hexadecimal, hashed together."""

def update_many(feeds: Sequence[tuple[Md5, Buffer]], /) -> None:
    """md5.update(data) for each (md5, data) of ``feeds``, hashed together: up to LANES
    at once, the rest two at a time.  Each md5 at most once (else ValueError)."""
