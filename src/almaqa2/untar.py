"""``qa2 untar``: extract a package's chunks safely, and only if every checksum matches.

The chunks are extracted into a staging directory inside ``--out``; their md5s and the
extracted files (against the manifest they carry) are checked; only then is the package
renamed into place.  Nothing appears under ``--out`` otherwise.

Each member passes ``safe_member`` before it is written: a member of a package lies inside
the package's directory, so absolute names, ``..`` and other top directories are refused
outright; then Python's tarfile ``data`` filter refuses links that leave the target, device
files and FIFOs, and clears setuid bits and owners (SPEC §8, §13).
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import materialize
from .errors import DestinationError, InputError, existing_dir
from .verify import (
    Extraction,
    Filter,
    Progress,
    Report,
    VerificationError,
    check_chunks,
    find_chunks,
)


def safe_member(project: str) -> Filter:
    """The filter for members of ``project``'s chunks (see the module's docstring)."""

    def safe(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        name = PurePosixPath(member.name)
        if name.is_absolute():
            raise tarfile.AbsolutePathError(member)
        if ".." in name.parts or name.parts[0] != project:
            where = os.path.normpath(os.path.join(dest, member.name))
            raise tarfile.OutsideDestinationError(member, where)
        return tarfile.data_filter(member, dest)

    return safe


@dataclass(frozen=True)
class Untarred:
    package: Path
    report: Report


def untar(chunks: Sequence[Path], out: Path, progress: Progress | None = None) -> Untarred:
    """Extract the chunks of one package into ``out/<project>``; raises VerificationError
    (and extracts nothing) if anything is missing or corrupt."""
    sets = find_chunks(chunks)
    if len(sets) > 1:
        raise InputError(
            f"these chunks belong to {len(sets)} packages",
            ", ".join(f"{s.project}_{s.tag}" for s in sets),
            fix="untar one package at a time, each into its own --out",
        )
    project = sets[0].project
    target = existing_dir(out, "the output directory", "create it first") / project
    if target.exists() or target.is_symlink():
        raise DestinationError(
            "the package is already there", target, fix="remove it or choose another --out"
        )
    with materialize.staging(target) as stage:
        report = check_chunks(sets, progress, Extraction(stage, safe_member(project)))
        if not report.ok:
            raise VerificationError(report)
        os.rename(stage / project, target)
    return Untarred(target, report)
