def plain(entry: tuple[str, int, int, int], /) -> bytes | None:
    """The header(s) of the entry (rel, size, mode, mtime) as tarfile writes them in PAX
    format, or None if it is not the common case (an ASCII name, size and time that fit
    their octal fields): tarfile's own must make it."""

def plain_size(entry: tuple[str, int, int, int], /) -> int | None:
    """len(plain(entry)), worked out without making it (planning sizes every file)."""
