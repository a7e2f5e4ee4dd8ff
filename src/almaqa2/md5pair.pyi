from collections.abc import Sequence
from typing import TypeAlias

Buffer: TypeAlias = bytes | bytearray | memoryview

class Md5:
    """An md5 being computed, as hashlib.md5(data)."""

    def __init__(self, data: Buffer = ...) -> None: ...
    def update(self, data: Buffer, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...

def update_two(one: Md5, data_one: Buffer, two: Md5, data_two: Buffer, /) -> None:
    """one.update(data_one) and two.update(data_two), hashed together."""

def hexdigests(pieces: Sequence[Buffer], /) -> list[str]:
    """The md5 of each piece, in hexadecimal, two hashed at a time."""
