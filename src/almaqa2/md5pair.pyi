from typing import TypeAlias

Buffer: TypeAlias = bytes | bytearray | memoryview

class Md5:
    """An md5 being computed, as hashlib.md5(data)."""

    def __init__(self, data: Buffer = ...) -> None: ...
    def update(self, data: Buffer, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...

def update_both(one: Md5, two: Md5, data: Buffer, /) -> None:
    """one.update(data) and two.update(data), hashed together."""
