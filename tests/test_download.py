"""``qa2 download`` against a local server on 127.0.0.1 that honours Range requests: a
listing page, ASDM tars and an md5 list; resume, md5 check, safe unpacking. No other network."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from almaqa2.cli import main as cli_main
from almaqa2.helpers.download import download

from conftest import refused_on_disk

ASDMS = ("uid___A002_Xdd9c61_X66d", "uid___A002_X4sda4d_Xa12")


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; answers ``Range: bytes=N-`` with 206 and the rest of the file,
    or, with no byte from N on, 416 and the file's length (as Apache and nginx do)."""

    ranges: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        wanted = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not wanted or not path.is_file():
            super().do_GET()
            return
        type(self).ranges.append(f"{path.name} {wanted}")
        start = int(re.fullmatch(r"bytes=(\d+)-", wanted)[1])  # type: ignore[index]
        data = path.read_bytes()[start:]
        if not data:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{path.stat().st_size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206)
        self.send_header("Content-Length", str(len(data)))
        self.send_header(
            "Content-Range", f"bytes {start}-{start + len(data) - 1}/{path.stat().st_size}"
        )
        self.end_headers()
        self.wfile.write(data)


def _asdm_tar(path: Path, uid: str, evil: bool = False) -> None:
    with tarfile.open(path, "w") as tar:
        for name, size in (("ASDM.xml", 300), ("ASDMBinary/uid___A002_X1_X1", 200_000)):
            data = (uid.encode() * (size // len(uid) + 1))[:size]
            info = tarfile.TarInfo(f"{uid}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if evil:
            info = tarfile.TarInfo("../outside.txt")
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The DRM's page: two ASDM tars, md5sums.txt, index.html; served on 127.0.0.1."""
    root = tmp_path / "site"
    root.mkdir()
    for uid in ASDMS:
        _asdm_tar(root / f"{uid}.tar", uid)
    sums = "".join(
        f"{hashlib.md5((root / f'{uid}.tar').read_bytes()).hexdigest()}  {uid}.tar\n"
        for uid in ASDMS
    )
    (root / "md5sums.txt").write_text(sums)
    items = "".join(
        f'<li><a href="{n}">{n}</a></li>' for n in (*[f"{u}.tar" for u in ASDMS], "md5sums.txt")
    )
    (root / "index.html").write_text(f"<html><body><ul>{items}</ul></body></html>")
    RangeHandler.ranges = []
    handler = lambda *a, **k: RangeHandler(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html", root
    server.shutdown()
    server.server_close()


def test_downloads_checks_and_unpacks_everything(
    site: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = site
    out = tmp_path / "raw"
    assert cli_main(["download", url, "--out", str(out), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [f["ok"] for f in found["files"]] == [True, True]
    assert sorted(found["extracted"]) == sorted(ASDMS)
    for uid in ASDMS:
        assert (out / uid / "ASDM.xml").is_file()
        assert (out / f"{uid}.tar").read_bytes() == (root / f"{uid}.tar").read_bytes()
    assert (out / "md5sums.txt").is_file()
    assert not list(out.glob("*.part"))


def test_a_partial_file_is_resumed_with_a_range_request(
    site: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = site
    out = tmp_path / "raw"
    out.mkdir()
    whole = (root / f"{ASDMS[0]}.tar").read_bytes()
    (out / f"{ASDMS[0]}.tar.part").write_bytes(whole[:100_000])
    seen: list[tuple[int, int]] = []
    result = download(url, out, lambda done, total, *_: seen.append((done, total)))
    first = next(f for f in result.fetched if f.name == f"{ASDMS[0]}.tar")
    assert first.resumed_from == 100_000 and first.ok
    assert RangeHandler.ranges == [f"{ASDMS[0]}.tar bytes=100000-"]
    assert (out / f"{ASDMS[0]}.tar").read_bytes() == whole
    assert seen[-1][0] == seen[-1][1] and seen[0][0] > 100_000, "progress counts from the resume"


@pytest.mark.parametrize("extra", [b"", b"garbage of a file made anew"])
def test_a_partial_file_with_nothing_left_to_fetch_is_checked_or_fetched_anew(
    site: tuple[str, Path], tmp_path: Path, extra: bytes
) -> None:
    """A partial file as long as the whole (a run stopped before its rename) is checked as
    it is; one longer than the server's file is fetched anew.  The server answers either's
    Range with 416: the download stopped there, telling the user to check the network."""
    url, root = site
    out = tmp_path / "raw"
    out.mkdir()
    whole = (root / f"{ASDMS[0]}.tar").read_bytes()
    (out / f"{ASDMS[0]}.tar.part").write_bytes(whole + extra)
    result = download(url, out)
    assert [f.ok for f in result.fetched] == [True, True]
    first = next(f for f in result.fetched if f.name == f"{ASDMS[0]}.tar")
    assert first.resumed_from == (0 if extra else len(whole))
    assert (out / f"{ASDMS[0]}.tar").read_bytes() == whole
    assert (out / ASDMS[0] / "ASDM.xml").is_file()
    assert not list(out.glob("*.part"))


def test_a_corrupted_file_fails_and_is_kept(
    site: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = site
    damaged = bytearray((root / f"{ASDMS[1]}.tar").read_bytes())
    damaged[1000] ^= 0xFF
    (root / f"{ASDMS[1]}.tar").write_bytes(bytes(damaged))
    out = tmp_path / "raw"
    assert cli_main(["download", url, "--out", str(out)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"1 file(s) arrived damaged, kept as <name>.corrupt ({ASDMS[1]}.tar)" in err
    assert (out / f"{ASDMS[1]}.tar.corrupt").read_bytes() == bytes(damaged)
    assert not (out / ASDMS[1]).exists(), "a damaged tar is not unpacked"
    assert (out / ASDMS[0] / "ASDM.xml").is_file()


def test_an_unsafe_member_is_refused(
    site: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = site
    _asdm_tar(root / f"{ASDMS[0]}.tar", ASDMS[0], evil=True)
    digest = hashlib.md5((root / f"{ASDMS[0]}.tar").read_bytes()).hexdigest()
    sums = (root / "md5sums.txt").read_text().splitlines()
    sums[0] = f"{digest}  {ASDMS[0]}.tar"
    (root / "md5sums.txt").write_text("\n".join(sums) + "\n")
    out = tmp_path / "area" / "raw"
    out.parent.mkdir()  # raw/ itself is made: the last level only
    assert cli_main(["download", url, "--out", str(out)]) == 2
    assert "not safe to extract" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "area" / "outside.txt").exists()
    assert not (out / ASDMS[0]).exists(), "nothing of an unsafe tar is unpacked"


@pytest.mark.parametrize(
    ("href", "said"),
    [
        ("x\x1b]0;pwned\x07.tar", "a link names no plain file"),
        (".hidden.tar", "a link names no plain file"),
        ("uid___A002_Xother_X1.tar", "uid___A002_Xother_X1.tar is not in the md5 list"),
    ],
)
def test_a_link_that_cannot_be_fetched_as_listed_is_refused_before_anything_is_written(
    site: tuple[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    href: str,
    said: str,
) -> None:
    """Every tar the page links to is checked first: a name a file in --out cannot have
    (a terminal's control sequence, a hidden file) or one the md5 list lacks stops the
    download before anything is fetched: --out is not even made."""
    url, root = site
    page = (root / "index.html").read_text()
    (root / "index.html").write_text(page.replace("</ul>", f'<li><a href="{href}">x</a></ul>'))
    out = tmp_path / "raw"
    assert cli_main(["download", url, "--out", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert said in err and "\x1b" not in err
    assert not out.exists()
    assert cli_main(["download", url, "--out", str(out), "--dry-run"]) == 2
    assert said in " ".join(capsys.readouterr().err.split())


def test_what_a_tar_unpacks_is_named_escaped(
    site: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The directories a downloaded tar unpacks are named as they can be printed: a
    terminal's control sequence in one is shown, not obeyed."""
    url, root = site
    odd = f"{ASDMS[0]}\x1b[2J"
    with tarfile.open(root / f"{ASDMS[0]}.tar", "w") as tar:
        info = tarfile.TarInfo(f"{odd}/ASDM.xml")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"asdm"))
    digest = hashlib.md5((root / f"{ASDMS[0]}.tar").read_bytes()).hexdigest()
    sums = (root / "md5sums.txt").read_text().splitlines()
    (root / "md5sums.txt").write_text("\n".join([f"{digest}  {ASDMS[0]}.tar", *sums[1:]]) + "\n")
    out = tmp_path / "raw"
    assert cli_main(["download", url, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and f"unpacked: {str(out / odd)!r}" in printed
    assert (out / odd / "ASDM.xml").read_bytes() == b"asdm"


def test_the_address_of_a_tar_given_as_the_page_is_not_read_into_memory(
    site: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A page or md5 list is read whole: an ASDM tar's address given by mistake (tens of
    GB) was read into memory before anything was said."""
    url, root = site
    with open(root / "uid___A002_X1_X1.tar", "wb") as big:
        big.truncate(40 << 20)
    address = url.replace("index.html", "uid___A002_X1_X1.tar")
    out = tmp_path / "raw"
    capsys.readouterr()
    assert cli_main(["download", address, "--out", str(out)]) == 2
    said = " ".join(capsys.readouterr().err.split())  # (and the test server's broken pipe)
    assert (
        f"error: this is larger than 16 MB, so it is not a page of links or md5s: {address};"
        " give the address of the page that links the ASDM tars."
    ) in said
    assert "Traceback" not in said.split("error: ")[-1]
    assert not out.exists()


def test_one_download_into_a_directory_at_a_time(
    site: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two, in two terminals, resumed the same .part at once, appending to each other."""
    from almaqa2.helpers.download import LOCK
    from almaqa2.package import lockfile

    url, _ = site
    out = tmp_path / "raw"
    out.mkdir()
    with lockfile.hold(out / LOCK, "downloading"):
        capsys.readouterr()
        assert cli_main(["download", url, "--out", str(out)]) == 2
        said = " ".join(capsys.readouterr().err.split())
        assert f"error: a download into {out} is in progress by" in said, said
        assert os.listdir(out) == [LOCK]
    assert cli_main(["download", url, "--out", str(out)]) == 0
    assert not (out / LOCK).exists()


def test_a_page_without_tars(
    site: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = site
    (root / "empty.html").write_text("<html><body>nothing yet</body></html>")
    assert (
        cli_main(["download", url.replace("index.html", "empty.html"), "--out", str(tmp_path)]) == 2
    )
    assert "links to no .tar file" in capsys.readouterr().err


def test_dry_run_lists_and_writes_nothing(
    site: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = site
    out = tmp_path / "raw"
    assert cli_main(["download", url, "--out", str(out), "--dry-run", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["tars"] == sorted(f"{uid}.tar" for uid in ASDMS)
    assert found["md5s"].endswith("/md5sums.txt")
    assert not out.exists()


def test_a_full_disk_is_said_to_be_the_disk_and_the_part_is_kept(
    site: tuple[str, Path], tmp_path: Path
) -> None:
    """It said "cannot download (No space left on device): <the tar's address>; check the
    address and the network": a write of the local disk, blamed on the network."""
    url, _ = site
    disk = tmp_path / "disk"
    disk.mkdir()
    said, left = refused_on_disk(["download", url, "--out", str(disk / "raw")], disk, "size=500k")
    named = re.fullmatch(
        rf"error: No space left on device: {re.escape(str(disk))}/raw/(\S+\.tar\.part); free"
        r" some space, or choose another place and run again\.",
        said,
    )
    assert named, said
    assert f"raw/{named[1]}" in left, "kept, to be resumed"


def test_a_disk_out_of_inodes_while_unpacking_names_the_folder_and_says_so(
    site: tuple[str, Path], tmp_path: Path
) -> None:
    """It named the hidden folder it could not make, and said to free space (the lock,
    removed on the way out, freed the inode it lacked)."""
    url, _ = site
    disk = tmp_path / "disk"
    disk.mkdir()
    argv = ["download", url, "--out", str(disk / "raw")]
    said, left = refused_on_disk(argv, disk, "size=4m,nr_inodes=5")
    assert said == (
        f"error: No space left on device: {disk}/raw; its file system holds as many files as"
        " it can (df -i): remove some there, or choose another place and run again."
    )
    assert not [name for name in left if "staging" in name]
