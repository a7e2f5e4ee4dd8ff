"""How long work reports its progress: ``(bytes done, bytes in all)``, to a bar or nowhere."""

from collections.abc import Callable

Progress = Callable[[int, int], None]
