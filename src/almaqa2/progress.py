"""How long work reports its progress: bytes done and bytes in all (or items, for a batch),
and the item at work when it has a name, to a bar on a terminal or nowhere."""

from typing import Protocol


class Progress(Protocol):
    def __call__(self, done: int, total: int, item: str = "", /) -> None: ...
