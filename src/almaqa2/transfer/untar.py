"""``qa2 untar``: extract a package's chunks safely, and only if every checksum matches.

The chunks are extracted into a staging directory inside ``--out``; their md5s and the
extracted files (against the manifest they carry) are checked; only then is the package
renamed into place, never over anything that appeared there meanwhile.  Nothing appears
under ``--out`` otherwise, and what a killed run left is removed by the next one.

Every member of every chunk is checked before anything is written (``safetar``): a
package's chunks hold only regular files and directories below the package's directory.
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from almaqa2 import destination
from almaqa2.errors import DestinationError, InputError
from almaqa2.package import package_dir
from almaqa2.progress import Progress
from almaqa2.transfer import safetar
from almaqa2.transfer.verify import (
    ChunkSet,
    Extraction,
    Report,
    VerificationError,
    check_chunks,
    find_chunks,
)


@dataclass(frozen=True)
class Untarred:
    package: Path
    report: Report


def check_members(chunk_set: ChunkSet) -> None:
    """Read every chunk's headers (not its data) and refuse the first unsafe member; a
    chunk that is not a readable tar is left for the checksums to report."""
    for path in chunk_set.present.values():
        try:
            with tarfile.open(path, "r:") as tar:
                safetar.check(tar, path, chunk_set.project)
        except (tarfile.TarError, EOFError, OSError):
            continue


def untar(
    chunks: Sequence[Path], out: Path, progress: Progress | None = None, dry_run: bool = False
) -> Untarred:
    """Extract the chunks of one package into ``out/<project>``; raises VerificationError
    (and extracts nothing) if anything is missing or corrupt.  ``dry_run``: every check
    that reads no file data (names, members, the destination), and nothing written."""
    sets = find_chunks(chunks)
    if len(sets) > 1:
        raise InputError(
            f"these chunks belong to {len(sets)} packages",
            ", ".join(f"{s.project}_{s.tag}" for s in sets),
            fix="untar one package at a time, each into its own --out",
        )
    project = sets[0].project
    target = destination.planned(out, "the output directory") / project
    package_dir.check_outside_packages(target.parent, "the package extracted", "an --out")
    check_members(sets[0])
    if dry_run:
        _refuse_existing(target)
        return Untarred(target, Report("chunks", tuple(sets[0].names()), 0, ()))
    # holding: tidies what a killed untar left, whatever follows
    with destination.made(target.parent), package_dir.holding(target):
        _refuse_existing(target)
        with package_dir.staging(target, becomes=target.parent) as stage:
            report = check_chunks(sets, progress, Extraction(stage, project))
            if not report.ok:
                raise VerificationError(report)
            package_dir.rename_new(stage / project, target)
    return Untarred(target, report)


def _refuse_existing(target: Path) -> None:
    if target.exists() or target.is_symlink():
        raise DestinationError(
            "the package is already there", target, fix="remove it or choose another --out"
        )
