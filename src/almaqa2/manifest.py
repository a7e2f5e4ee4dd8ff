"""The per-file md5 manifest of a package, in ``md5sum -c`` format.

``<packpath>/manifest.md5`` lists every file of the package (not itself) by a path that
starts with the project code, so ``md5sum -c`` run from packpath's parent checks it.
Hashing runs on a thread pool (hashlib releases the GIL), so that it overlaps with the
copying that produces the files and uses both cores.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

NAME = "manifest.md5"
_BLOCK = 1 << 20


def md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb", buffering=0) as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


class Hasher:
    """Hash files in the background as they are handed over; ``results()`` waits for all."""

    def __init__(self, workers: int | None = None):
        self._pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2)
        self._futures: dict[Path, Future[str]] = {}

    def add(self, path: Path, _size: int = 0) -> None:
        """Queue ``path`` (signature fits materialize's ``done`` callback)."""
        if path not in self._futures:
            self._futures[path] = self._pool.submit(md5_file, path)

    def results(self) -> dict[Path, str]:
        try:
            return {path: future.result() for path, future in self._futures.items()}
        finally:
            self._pool.shutdown()

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(cancel_futures=True)


def files_under(top: Path, include_manifest: bool = False) -> Iterator[Path]:
    """Every regular file below ``top``, sorted; the top-level manifest only if asked."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if include_manifest or not (name == NAME and dirpath == str(top)):
                yield path


def _escape(path: str) -> tuple[str, str]:
    """md5sum's escaping: a leading backslash marks a name with ``\\`` or a newline."""
    if "\\" in path or "\n" in path:
        return "\\", path.replace("\\", "\\\\").replace("\n", "\\n")
    return "", path


def format_line(digest: str, path: str) -> str:
    flag, name = _escape(path)
    return f"{flag}{digest}  {name}\n"


def read(path: Path) -> dict[str, str]:
    """A manifest's entries: {path starting with the project code: md5}."""
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        escaped = line.startswith("\\")
        digest, _, name = line.lstrip("\\").partition("  ")
        if escaped:
            name = name.replace("\\n", "\n").replace("\\\\", "\\")
        entries[name] = digest
    return entries


def write(package: Path, project: str, digests: dict[str, str]) -> Path:
    """Write ``<package>/manifest.md5`` atomically from {path below package: md5}."""
    target = package / NAME
    lines = [format_line(d, f"{project}/{rel}") for rel, d in sorted(digests.items())]
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=package)
    with os.fdopen(fd, "w") as out:
        out.writelines(lines)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target
