"""``qa2 download``: fetch the raw data of an SB from the page the DRM sends (SPEC §9, seed
002's ``qa2_download``): every ASDM tar the page links to and its md5 list, resuming what an
earlier run left half-done (HTTP Range), checked, then unpacked safely.

A partial file is ``<name>.part`` until it is complete and its md5 matches the list; one
that does not match is kept as ``<name>.corrupt`` for a look and is not unpacked.  Only
``http(s)`` links are followed (a page cannot make it read local files); a tar is unpacked
only if it is a plain (uncompressed) tar of files and directories (``safetar``), into a
staging directory first, so its unpacked size is bounded by its own.  One download into a
directory at a time: two would append to the same ``.part``.
"""

from __future__ import annotations

import hashlib
import http
import http.client
import logging
import os
import re
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.client import HTTPResponse
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from almaqa2 import destination
from almaqa2.atomic import write_atomically
from almaqa2.errors import Almaqa2Error, InputError, give_name, reason
from almaqa2.manifest import md5_file
from almaqa2.package import lockfile, package_dir
from almaqa2.progress import Progress
from almaqa2.transfer import safetar

log = logging.getLogger(__name__)
LOCK = ".almaqa2-download.lock"
"""Held in the download directory while a download writes there."""
_BLOCK = 1 << 20
_MD5_LIST = re.compile(r"(?i).*md5.*")
_LINE = re.compile(r"^([0-9a-fA-F]{32}) [ *]?(.+)$")
_SCHEMES = ("http", "https")
_NETWORK = (urllib.error.URLError, http.client.HTTPException, OSError, ValueError)
"""What a server or the network can make urllib raise, a garbled reply included."""


class DownloadError(Almaqa2Error):
    """A file arrived damaged (its md5 differs from the list)."""

    exit_code = 1


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


def links(page: str, base: str) -> tuple[list[str], str | None]:
    """The tar URLs and the md5 list URL a listing page links to (pure)."""
    parser = _Links()
    parser.feed(page)
    absolute = [
        url for href in parser.hrefs if urlsplit(url := urljoin(base, href)).scheme in _SCHEMES
    ]
    tars = sorted({u for u in absolute if u.split("?")[0].endswith(".tar")})
    md5s = [u for u in absolute if _MD5_LIST.fullmatch(u.rsplit("/", 1)[-1]) and u not in tars]
    return tars, (md5s[0] if md5s else None)


def parse_md5s(text: str) -> dict[str, str]:
    """{file name: md5} from an ``md5sum`` listing."""
    found = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match:
            found[Path(match[2]).name] = match[1].lower()
    return found


def _failed(url: str, exc: BaseException) -> InputError:
    return InputError(
        f"cannot download ({reason(exc)})", url, fix="check the address and the network"
    )


class _PastTheEnd(Exception):
    """The server has no byte from the one asked on (HTTP 416): a partial file as long as
    the whole (the run stopped before its rename), or longer (the file was made anew)."""

    def __init__(self, length: int | None):
        super().__init__(length)
        self.length = length  # the file's, as the server said it (``bytes */N``)


def _get(url: str, start: int = 0) -> HTTPResponse:
    if urlsplit(url).scheme not in _SCHEMES:
        raise InputError(
            "only http and https addresses are downloaded", url, fix="give the page's web address"
        )
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        answer: HTTPResponse = urllib.request.urlopen(request, timeout=60)
        return answer
    except urllib.error.HTTPError as exc:
        if start and exc.code == http.HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE:
            length = re.fullmatch(r"bytes \*/(\d+)", exc.headers.get("Content-Range") or "")
            raise _PastTheEnd(int(length[1]) if length else None) from None
        raise _failed(url, exc) from None
    except _NETWORK as exc:
        raise _failed(url, exc) from None


_PAGE_AT_MOST = 16 << 20
"""The largest page or md5 list read: a listing of ASDMs is some KB."""


def _text(url: str) -> str:
    """The page or md5 list at ``url``, read whole into memory, if it is one's size: the
    address of an ASDM tar given by mistake (tens of GB) would be read into it."""
    with _get(url) as response:
        data = _received(response, url, _PAGE_AT_MOST + 1)
    if len(data) > _PAGE_AT_MOST:
        raise InputError(
            f"this is larger than {_PAGE_AT_MOST >> 20} MB, so it is not a page of links or md5s",
            url,
            fix="give the address of the page that links the ASDM tars",
        )
    return data.decode("utf-8", "replace")


@dataclass
class Fetched:
    name: str
    resumed_from: int
    md5: str
    ok: bool


@dataclass
class Download:
    out: Path
    fetched: list[Fetched] = field(default_factory=list)
    extracted: list[str] = field(default_factory=list)


def fetch(url: str, dest: Path, progress: Progress | None = None) -> Fetched:
    """Download ``url`` to ``dest``, resuming ``dest.part``; returns its md5."""
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    digest = hashlib.md5()
    if start:
        with part.open("rb") as f:
            while block := f.read(_BLOCK):
                digest.update(block)
    try:
        response = _get(url, start)
    except _PastTheEnd as end:
        if end.length == start:  # whole: its md5 is checked as any download's
            os.replace(part, dest)
            return Fetched(dest.name, start, digest.hexdigest(), True)
        log.info("the server has nothing past %s (HTTP 416): fetched anew", part)
        start, digest = 0, hashlib.md5()
        response = _get(url)
    with response:
        if start and response.status != 206:  # the server ignored the Range: start again
            start, digest = 0, hashlib.md5()
        length = response.headers.get("Content-Length") or "0"
        total = start + (int(length) if length.isdigit() else 0)
        done = start
        try:
            with part.open("ab" if start else "wb") as f:
                while block := _received(response, url):
                    f.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
        except OSError as exc:  # this disk's (the network's are said by now): a full disk
            give_name(exc, part)  # named no file, and was said to be the network
            raise
    os.replace(part, dest)
    return Fetched(dest.name, start, digest.hexdigest(), True)


def _received(response: HTTPResponse, url: str, size: int = _BLOCK) -> bytes:
    """The next ``size`` bytes of the reply (empty at its end); what the network did wrong
    is said."""
    try:
        return response.read(size)
    except _NETWORK as exc:
        raise _failed(url, exc) from None


def extract(tar_path: Path, out: Path) -> list[str]:
    """Unpack the plain tar ``tar_path`` into ``out`` (see the module's docstring): every
    member checked before anything is written, the tar's top-level entries renamed into
    ``out`` once all is written; one already there is kept.  Returns their names."""
    try:
        with tarfile.open(tar_path, "r:") as tar:
            members = tar.getmembers()
            safetar.check(members, tar_path)
            with package_dir.staging(out / tar_path.name, becomes=out) as stage:
                with open(tar_path, "rb") as raw:
                    for member in members:
                        safetar.extract(raw.fileno(), member, stage, tar_path)
                tops = sorted(os.listdir(stage))
                for top in tops:
                    if (out / top).exists() or (out / top).is_symlink():
                        log.info("already unpacked, kept as it is: %s", out / top)
                        continue
                    package_dir.rename_new(stage / top, out / top)
    except tarfile.TarError as exc:
        raise InputError(
            f"not a plain tar ({reason(exc)})", tar_path, fix="download it again"
        ) from None
    return tops


def _file_name(url: str) -> str:
    """The file name a link gives (its path's last part), if it can name a file in --out
    (a control character in it would be obeyed by the terminal the name is printed on)."""
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    if name in ("", ".", "..") or name.startswith(".") or not name.isprintable():
        raise InputError("a link names no plain file", url, fix="ask the DRM for a clean page")
    return name


@dataclass(frozen=True)
class Listing:
    """What a listing page offers, checked before anything is written: each tar's file
    name and URL (every one in the md5 list), and the md5 list's."""

    tars: list[tuple[str, str]]  # (file name, URL)
    md5_url: str
    md5_text: str
    expected: dict[str, str]  # {file name: md5}, from the md5 list


def listing(url: str) -> Listing:
    """The tars the page at ``url`` links to, with its md5 list."""
    tars, md5_url = links(_text(url), url)
    if not tars:
        raise InputError("the page links to no .tar file", url, fix="give the page the DRM sent")
    if md5_url is None:
        raise InputError("the page links to no md5 list", url, fix="ask the DRM for the md5sums")
    _file_name(md5_url)  # (it names a file in --out too)
    md5_text = _text(md5_url)
    expected = parse_md5s(md5_text)
    named = [(_file_name(tar), tar) for tar in tars]
    for name, _ in named:
        if name not in expected:
            raise InputError(f"{name} is not in the md5 list", md5_url, fix="ask the DRM for it")
    return Listing(named, md5_url, md5_text, expected)


def download(url: str, out: Path, progress: Progress | None = None) -> Download:
    """Fetch, check and unpack everything the listing page at ``url`` links to."""
    out = destination.planned(out, "the download directory")
    offered = listing(url)
    with destination.made(out), lockfile.hold(out / LOCK, f"a download into {out}"):
        return _fetch_all(out, offered, progress)


def _counted(progress: Progress | None, before: int, item: str) -> Progress | None:
    """``progress`` of one file as the whole download's: the ``before`` bytes of the files
    already fetched added, and which file of how many is coming."""
    if progress is None:
        return None
    shown = progress

    def named(done: int, total: int, _: str = "", /) -> None:
        shown(before + done, before + total, item)

    return named


def _fetch_all(out: Path, offered: Listing, progress: Progress | None) -> Download:
    write_atomically(out / _file_name(offered.md5_url), offered.md5_text)
    result = Download(out)
    bad = []
    before = 0  # bytes fetched so far
    tars = offered.tars
    for number, (name, tar_url) in enumerate(tars, 1):
        dest = out / name
        if dest.exists():
            fetched = Fetched(name, 0, md5_file(dest), True)
        else:
            item = f"{name}, {number} of {len(tars)}"
            fetched = fetch(tar_url, dest, _counted(progress, before, item))
            before += dest.stat().st_size
        fetched.ok = fetched.md5 == offered.expected[name]
        result.fetched.append(fetched)
        if not fetched.ok:
            os.replace(dest, dest.with_name(name + ".corrupt"))
            bad.append(name)
            continue
        result.extracted += extract(dest, out)
    if bad:
        raise DownloadError(
            f"{len(bad)} file(s) arrived damaged, kept as <name>.corrupt ({', '.join(bad)})",
            out,
            fix="run qa2 download again to fetch them anew",
        )
    return result
