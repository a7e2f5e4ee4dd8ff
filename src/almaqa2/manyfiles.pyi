def plain_files(fd: int, base: str, uid: int, /) -> tuple[list[tuple[str, int, None]], list[str]]:
    """The plain files (regular, owned by ``uid``, the owner's read bit set) of the
    directory open as ``fd``, each ``(base + name, size, None)``, and its other names, for
    the caller to look at; each in no order."""

def tar_entries(
    fd: int, base: str, modes: dict[int, int], /
) -> tuple[list[tuple[str, int, int, int]], list[str]]:
    """The regular files of the directory open as ``fd``, each ``(base + name, size,
    permission bits, int(st_mtime))`` with each mode one object of ``modes`` (a package
    holds a million files and a few modes), and its other names; each in no order."""

def names(fd: int, /) -> tuple[list[str], list[str]]:
    """The names in the directory open as ``fd``: those of directories (not through a
    link), and all others; each in no order."""

def read_small(fd: int, names: list[str], limit: int, flags: int, /) -> list[bytes | int | str]:
    """What one read of each of ``names`` (in the directory open as ``fd``, opened with
    ``flags``) finds: its bytes if it holds at most ``limit``, else its size, or why it
    cannot be read (``"unreadable (<the system's reason>)"``)."""

def links(src_fd: int, src: str, dst_fd: int, names: list[str], /) -> None:
    """Link the file ``src`` (in the directory open as ``src_fd``) as each of ``names`` (in
    the one open as ``dst_fd``), in order; the OSError of a link that fails names it, the
    links before it made."""
