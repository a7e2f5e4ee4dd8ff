"""ALMA identifiers: UIDs, project codes and EB short names (pure functions).

A UID is written ``uid://A002/X3c9295/X8c`` by the archive and ``uid___A002_X3c9295_X8c``
on disk; every function here accepts both and returns the file-system form.
"""

from __future__ import annotations

import re

from almaqa2.errors import InputError

_UID_BODY = r"A\d{3}_X[0-9A-Za-z]+_X[0-9A-Za-z]+"
UID_FS = re.compile(rf"uid___{_UID_BODY}")
"""A UID in file-system form, found anywhere in a name."""

_UID_ARCHIVE = re.compile(r"uid://(A\d{3})/(X[0-9A-Za-z]+)/(X[0-9A-Za-z]+)")
_UID_FS_EXACT = re.compile(rf"uid___{_UID_BODY}")
PROJECT_CODE = re.compile(r"\d{4}\.[0-9A]\.\d{5}\.[A-Z]")
"""A project code; always ``fullmatch``ed (``$`` would let a trailing newline through)."""
SB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
"""An SB name as it may name a file (the ticket): no '/', no leading dot, no spaces."""


def to_fs(uid: str) -> str:
    """Return the file-system form of ``uid`` (either form accepted)."""
    text = uid.strip()
    if _UID_FS_EXACT.fullmatch(text):
        return text
    archive = _UID_ARCHIVE.fullmatch(text)
    if archive:
        return "uid___" + "_".join(archive.groups())
    raise InputError(
        f"'{uid}' is not an ALMA UID",
        fix="write it as uid://A001/X13e/X1fe or uid___A001_X13e_X1fe",
    )


def is_uid(name: str) -> bool:
    """True if ``name`` is exactly a UID in file-system form."""
    return bool(_UID_FS_EXACT.fullmatch(name))


def uid_prefix(name: str) -> str | None:
    """The UID a file name starts with (``uid___A002_X3c9295_X8c.ms.split`` -> the UID)."""
    found = UID_FS.match(name)
    return found.group(0) if found else None


_EB_NAME = re.compile(
    rf"(?:member\.uid___{_UID_BODY}\.)?(?P<eb>uid___{_UID_BODY})"
    r"(?:\.ms\b|\.calibration|\.scriptForCalibration|\.log\.tgz|_flag|__|$)"
)
"""A name that belongs to one EB: its MSes, calibration, scripts, flag templates, QA and logs
(``<EB>__name``), also behind a Cycle-5 ``member.<MOUS>.`` prefix."""


def eb_of_name(name: str) -> str | None:
    """The EB UID that the file or directory ``name`` belongs to, if it names one."""
    found = _EB_NAME.match(name)
    return found.group("eb") if found else None


def short_name(uid: str) -> str:
    """An EB's short name: the last ``_``-separated part of its UID (``X8c``)."""
    return to_fs(uid).rsplit("_", 1)[1]


def check_sb_name(name: str | None) -> str | None:
    """Return ``name`` if it can name the ticket files, else raise InputError."""
    if name is not None and not SB_NAME.fullmatch(name):
        raise InputError(
            f"{name!r} cannot be an SB name in a file name",
            fix="use letters, digits and _ . + - only, e.g. B6_IRAS12345",
        )
    return name


def check_project_code(code: str) -> str:
    """Return ``code`` if it looks like an ALMA project code, else raise InputError."""
    if not PROJECT_CODE.fullmatch(code):
        raise InputError(
            f"{code!r} is not an ALMA project code",
            fix="name the package directory after the project, e.g. 2011.0.00229.S",
        )
    return code
