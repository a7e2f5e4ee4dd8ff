"""Chunks, ASDM tars, listing pages and web roots made by someone hostile or careless
(issue 13, items 4, 6, 9, 10, 13, 14, 15, 16): nothing is written outside the target, only
real and complete packages travel, and every refusal is one sentence."""

from __future__ import annotations

import errno
import hashlib
import http.server
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from almaqa2 import manifest
from almaqa2.cli import main
from almaqa2.package import lockfile as lock
from almaqa2.package import package_dir
from almaqa2.transfer import deliver as deliver_module
from test_download import ASDMS, _asdm_tar
from test_untar import CHUNK, P, _craft, _file, _resum

from conftest import QA2, Case


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    return " ".join(err.split())


# -- item 4: the tarfile filter bypass (CVE-2025-4517) ----------------------------------------


def _cve_members(top: str, victim: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    """The shape of the published bypass: directories with names near PATH_MAX joined by a
    chain of symbolic links, a link that climbs out through them, then a file written
    through it (harmless directories first, so a filter that checks late has written)."""
    long = "d" * 247
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    path = top
    for step in "abcdefghijklmnop":
        folder = tarfile.TarInfo(f"{path}/{long}")
        folder.type = tarfile.DIRTYPE
        link = tarfile.TarInfo(f"{path}/{step}")
        link.type, link.linkname = tarfile.SYMTYPE, long
        members += [(folder, b""), (link, b"")]
        path = f"{path}/{long}"
    climb = tarfile.TarInfo(f"{top}/" + "/".join("abcdefghijklmnop") + "/" + "l" * 254)
    climb.type, climb.linkname = tarfile.SYMTYPE, "../" * 16
    escape = tarfile.TarInfo(f"{top}/escape")
    escape.type = tarfile.SYMTYPE
    escape.linkname = climb.name.removeprefix(f"{top}/") + "/../" * 8 + str(victim.parent)
    members += [(climb, b""), (escape, b""), _file(f"{top}/escape/{victim.name}", b"PWNED\n")]
    return members


def test_untar_refuses_the_filter_bypass_before_writing_anything(
    tmp_path: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("intact\n")
    folder = tmp_path / "crafted"
    folder.mkdir()
    chunk = _craft(folder, [_file(f"{P}/first.txt"), *_cve_members(P, victim)])
    assert main(["untar", str(chunk), "--out", str(out)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "symbolic link" in err and "not safe to extract" in err
    assert victim.read_text() == "intact\n"
    assert os.listdir(out) == []


def test_verify_reports_members_untar_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crafted chunk whose manifest lists its '../', absolute and foreign members."""
    folder = tmp_path / "crafted"
    folder.mkdir()
    evil = [_file(f"{P}/../escaped.txt"), _file("/tmp/absolute.txt"), _file("2099.1.00001.S/x")]
    body = "".join(
        manifest.format_line(hashlib.md5(data).hexdigest(), info.name)
        for info, data in [_file(f"{P}/ok.txt"), *evil]
    )
    chunk = _craft(folder, [_file(f"{P}/manifest.md5", body.encode()), _file(f"{P}/ok.txt"), *evil])
    capsys.readouterr()
    assert main(["verify", str(chunk)]) == 1
    said = capsys.readouterr().out
    assert said.count("unsafe: ") == 3, said
    assert "climbs out" in said and "absolute" in said and "outside the package" in said


CLASHES = {  # after a harmless first file, "name" a file and "name/" a directory: said
    "a directory where a file is": (["x", "x/"], "'{top}/x' twice"),
    "a file where a directory is": (["x/", "x"], "'{top}/x' twice"),
    "a file below a file": (["x", "x/y/z"], "'{top}/x/y/z' below a name it holds as a file"),
    "a directory below a file": (["x", "x/y/"], "'{top}/x/y' below a name it holds as a file"),
}


def _clashing(top: str, case: str) -> list[tuple[tarfile.TarInfo, bytes]]:
    members = [_file(f"{top}/first.txt")]
    for name in CLASHES[case][0]:
        info, data = _file(f"{top}/{name.rstrip('/')}")
        if name.endswith("/"):
            info.type, data = tarfile.DIRTYPE, b""
        members.append((info, data))
    return members


@pytest.mark.parametrize("case", CLASHES)
def test_untar_of_a_chunk_naming_a_path_twice_is_one_sentence_and_leaves_nothing(
    tmp_path: Path, out: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    """A crafted chunk that passes every check before extraction (its manifest agrees)
    but names one path as a file and as a directory, or puts something below a file: it
    said the system's 'File exists' or 'Not a directory', naming only the chunk, and
    told the user to check the disks."""
    folder = tmp_path / "crafted"
    folder.mkdir()
    members = _clashing(P, case)
    body = "".join(
        manifest.format_line(hashlib.md5(data).hexdigest(), info.name)
        for info, data in members
        if info.isreg()
    )
    chunk = _craft(folder, [_file(f"{P}/manifest.md5", body.encode()), *members])
    assert main(["untar", str(chunk), "--out", str(out)]) == 2
    said = _one_line(capsys.readouterr().err)
    assert f"the tar holds {CLASHES[case][1].format(top=P)}" in said and str(chunk) in said
    assert "ask the sender for a clean copy" in said
    assert os.listdir(out) == []


# -- item 6: links, compression and sparse files ------------------------------------------------


class RawHandler(http.server.BaseHTTPRequestHandler):
    """A server that answers what ``replies`` says for each path, byte for byte."""

    replies: ClassVar[dict[str, bytes]] = {}

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.wfile.write(self.replies.get(self.path, b"HTTP/1.0 404 Not Found\r\n\r\n"))


def _ok(body: bytes) -> bytes:
    return b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body


@pytest.fixture
def raw_site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RawHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _page(base: str, tar_name: str, tar_reply: bytes, md5: str) -> str:
    RawHandler.replies = {
        "/index.html": _ok(f'<a href="{tar_name}">t</a> <a href="md5sums.txt">m</a>'.encode()),
        "/md5sums.txt": _ok(f"{md5}  {tar_name}\n".encode()),
        f"/{tar_name}": tar_reply,
    }
    return f"{base}/index.html"


def test_download_does_not_follow_file_links(
    raw_site: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "secret.tar"
    _asdm_tar(local, ASDMS[0])
    md5 = hashlib.md5(local.read_bytes()).hexdigest()
    RawHandler.replies = {
        "/index.html": _ok(f'<a href="file://{local}">t</a> <a href="md5sums.txt">m</a>'.encode()),
        "/md5sums.txt": _ok(f"{md5}  secret.tar\n".encode()),
    }
    out = tmp_path / "raw"
    assert main(["download", f"{raw_site}/index.html", "--out", str(out)]) == 2
    assert "links to no .tar file" in _one_line(capsys.readouterr().err)
    assert not (out / "secret.tar").exists() and not (out / ASDMS[0]).exists()


def test_download_refuses_a_compressed_tar(
    raw_site: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """300 KB of gzip that would unpack to 300 MB: only plain tars are unpacked."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"{ASDMS[0]}/ASDM.xml")
        info.size = 300 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    bomb = buffer.getvalue()
    assert len(bomb) < 400_000
    url = _page(raw_site, f"{ASDMS[0]}.tar", _ok(bomb), hashlib.md5(bomb).hexdigest())
    out = tmp_path / "raw"
    assert main(["download", url, "--out", str(out)]) == 2
    assert "not a plain tar" in _one_line(capsys.readouterr().err)
    assert sorted(os.listdir(out)) == sorted([f"{ASDMS[0]}.tar", "md5sums.txt"])


@pytest.mark.parametrize(
    "reply",
    [
        b"GARBAGE\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: banana\r\n\r\nshort",
    ],
    ids=["status line", "chunk size", "content length"],
)
def test_download_of_a_garbled_reply_is_one_sentence(
    reply: bytes, raw_site: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _page(raw_site, f"{ASDMS[0]}.tar", reply, "0" * 32)
    code = main(["download", url, "--out", str(tmp_path / "raw")])
    err = _one_line(capsys.readouterr().err)
    assert code in (1, 2) and ("cannot download" in err or "damaged" in err)


@pytest.mark.parametrize("case", CLASHES)
def test_download_of_a_tar_naming_a_path_twice_is_one_sentence_and_leaves_nothing(
    raw_site: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in _clashing(ASDMS[0], case):
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    body = buffer.getvalue()
    name = f"{ASDMS[0]}.tar"
    url = _page(raw_site, name, _ok(body), hashlib.md5(body).hexdigest())
    out = tmp_path / "raw"
    assert main(["download", url, "--out", str(out)]) == 2
    said = _one_line(capsys.readouterr().err)
    assert f"the tar holds {CLASHES[case][1].format(top=ASDMS[0])}" in said
    assert str(out / name) in said
    assert sorted(os.listdir(out)) == ["md5sums.txt", name], "nothing of it unpacked"


def _sparse_chunk(folder: Path) -> Path:
    """A real GNU tar sparse member: 1 GB of holes in a chunk of a few KB."""
    source = folder / "src"
    (source / P).mkdir(parents=True)
    with open(source / P / "holes.bin", "wb") as f:
        f.truncate(1 << 30)
    chunk = folder / CHUNK
    subprocess.run(
        ["tar", "-S", "--format=gnu", "-cf", str(chunk), "-C", str(source), P], check=True
    )
    shutil.rmtree(source)
    assert chunk.stat().st_size < 100_000
    _resum(chunk)
    return chunk


def test_untar_refuses_a_sparse_member(
    tmp_path: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chunk = _sparse_chunk(tmp_path)
    assert main(["untar", str(chunk), "--out", str(out)]) == 2
    assert "sparse file" in _one_line(capsys.readouterr().err)
    assert os.listdir(out) == []


def test_deliver_refuses_a_chunk_named_link_to_a_secret(
    chunks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("private key\n")
    secret.chmod(0o600)
    first = sorted(chunks.glob("*.tar"))[0]
    shutil.copy(first, tmp_path / "real.tar")
    first.unlink()
    first.symlink_to(secret)
    web = tmp_path / "web"
    web.mkdir()
    assert main(["deliver", str(chunks), "--web-root", str(web)]) == 2
    assert "link" in _one_line(capsys.readouterr().err)
    assert os.listdir(web) == []


def test_deliver_checks_the_md5s_of_what_it_publishes(
    chunks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = sorted(chunks.glob("*.tar"))[1]
    with open(damaged, "r+b") as f:
        f.seek(700)
        f.write(b"X")
    web = tmp_path / "web"
    web.mkdir()
    assert main(["deliver", str(chunks), "--web-root", str(web)]) == 1
    said = " ".join(capsys.readouterr().err.split())
    assert f"corrupt: {damaged} (expected" in said, "the chunk given, not its removed copy"
    assert os.listdir(web) == []


# -- item 9: more than 999 chunks --------------------------------------------------------------


def test_more_than_999_chunks_are_named_and_read_back(tmp_path: Path) -> None:
    package = tmp_path / "pkg" / P
    (package / "product").mkdir(parents=True)
    digests = {}
    for n in range(1001):
        data = f"{n:05d}".encode() * 1000  # 5 KB: one file a chunk at the smallest size
        (package / "product" / f"f{n:04d}.bin").write_bytes(data)
        digests[f"product/f{n:04d}.bin"] = hashlib.md5(data).hexdigest()
    manifest.write(package, P, digests)
    split = tmp_path / "chunks"
    split.mkdir()
    assert main(["tarsplit", str(package), "--max-size", "10K", "--out", str(split)]) == 0
    names = sorted(p.name for p in split.glob("*.tar"))
    assert len(names) == 1002 and names[0].endswith("_0001_of_1002.tar"), names[:2]
    assert names[-1].endswith("_1002_of_1002.tar")
    assert main(["verify", str(split)]) == 0
    out = tmp_path / "out"
    out.mkdir()
    assert main(["untar", str(split), "--out", str(out)]) == 0
    assert main(["verify", str(out / P)]) == 0


# -- item 10: an older set of chunks, two splits at once ----------------------------------------


def _copy_package(case: Case) -> Path:
    assert case.run_cli("copy") == 0
    return case.packpath


def test_a_new_split_replaces_an_older_set_of_the_same_package(
    case229: Case, tmp_path: Path
) -> None:
    package = _copy_package(case229)
    split = tmp_path / "chunks"
    split.mkdir()
    argv = ["tarsplit", str(package), "--out", str(split), "-n", "2012-06-20"]
    assert main([*argv, "--max-size", "100K"]) == 0
    older = sorted(p.name for p in split.glob("*.tar"))
    assert main([*argv, "--max-size", "10G"]) == 0
    now = sorted(p.name for p in split.iterdir())
    assert len(older) > 1 and [n for n in now if n.endswith(".tar")] == [
        f"{P.replace('2013.1.00123.S', package.name)}_2012_06_20_001_of_001.tar"
    ]
    assert not [n for n in now if n in older], "nothing of the older set is left"
    assert main(["verify", str(split)]) == 0


def test_verify_names_two_mixed_splits(
    case229: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = _copy_package(case229)
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, size in ((first, "100K"), (second, "10G")):
        folder.mkdir()
        argv = ["tarsplit", str(package), "--out", str(folder), "-n", "2012-06-20"]
        assert main([*argv, "--max-size", size]) == 0
    for path in first.iterdir():
        if path.name.endswith((".tar", ".md5sum")):
            shutil.copy(path, second)
    capsys.readouterr()
    assert main(["verify", str(second)]) == 1
    assert "splits (of 1 and" in capsys.readouterr().out


def test_one_split_into_a_folder_at_a_time(
    case229: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = _copy_package(case229)
    split = tmp_path / "chunks"
    split.mkdir()
    holder = split / f".{package.name}_2012_06_20.split.almaqa2.lock"
    with lock.hold(holder, "splitting"):
        argv = ["tarsplit", str(package), "--out", str(split), "-n", "2012-06-20"]
        assert main(argv) == 2
    assert "in progress" in _one_line(capsys.readouterr().err)
    assert not list(split.glob("*.tar"))


def test_chunks_a_split_is_still_writing_are_neither_checked_nor_unpacked(
    case229: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A split renames each chunk into place when it is whole, and writes their list last:
    a verify of the folder meanwhile reported the chunks not yet there missing (FAILED,
    with every file they hold), or, before the first, that there were no chunks at all.
    While the split holds its lock, verify, untar and deliver say it is still writing."""
    package = _copy_package(case229)
    split, web, out = tmp_path / "chunks", tmp_path / "web", tmp_path / "unpacked"
    split.mkdir()
    holder = split / f".{package.name}_2012_06_20.split.almaqa2.lock"
    readers = (
        ["verify", str(split)],
        ["untar", str(split), "--out", str(out)],
        ["deliver", str(split), "--web-root", str(web)],
        ["inspect", str(split)],
    )
    for first in (True, False):  # before its first chunk, then with its chunks there
        if not first:
            assert main(["tarsplit", str(package), "--out", str(split), "-n", "2012-06-20"]) == 0
        with lock.hold(holder, "splitting"):
            for argv in readers:
                capsys.readouterr()
                assert main(argv) == 2, argv
                said = _one_line(capsys.readouterr().err)
                assert f"splitting {package.name}_2012_06_20 into {split} is in progress" in said
    assert not out.exists() and not web.exists()
    assert main(["verify", str(split)]) == 0


@pytest.mark.parametrize("command", ["tarsplit", "untar", "deliver", "package"])
def test_nothing_is_written_inside_another_package(
    case229: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """A package holds only what its run put there: chunks, an extracted package, a web
    root or a package written into another package made it fail its manifest, and would
    have travelled in its next split.  Each command checked only the package it read."""
    package = _copy_package(case229)
    chunks = tmp_path / "chunks"
    assert main(["tarsplit", str(package), "--out", str(chunks), "-n", "2012-06-20"]) == 0
    other = Path(shutil.copytree(package, tmp_path / "other" / package.name))
    inside = other / "sg_ouss_id"
    before = sorted(other.rglob("*"))
    argv, _ = case229.commands("copy")
    argv = {
        "tarsplit": ["tarsplit", str(package), "--out", str(inside)],
        "untar": ["untar", str(chunks), "--out", str(inside)],
        "deliver": ["deliver", str(chunks), "--web-root", str(inside)],
        "package": [*argv[:2], str(inside / package.name), *argv[3:]],
    }[command]
    capsys.readouterr()
    assert main(argv) == 2
    said = _one_line(capsys.readouterr().err)
    assert "cannot be inside a package: " in said and f"outside {other}." in said, said
    assert sorted(other.rglob("*")) == before
    assert main(["verify", str(other)]) == 0


# -- item 13: only real packages travel ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["fake", "ticket"])
def test_a_fake_package_is_neither_split_nor_published(
    mode: str, case229: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert case229.run_cli(mode) == 0
    split, web = tmp_path / "chunks", tmp_path / "web"
    split.mkdir()
    web.mkdir()
    assert main(["tarsplit", str(case229.packpath), "--out", str(split)]) == 2
    assert f"made in {mode} mode" in _one_line(capsys.readouterr().err)
    assert main(["deliver", str(case229.packpath), "--web-root", str(web)]) == 2
    assert f"made in {mode} mode" in _one_line(capsys.readouterr().err)
    assert os.listdir(split) == [] and os.listdir(web) == []


def test_chunks_of_a_fake_package_made_by_hand_are_not_published(
    case229: Case, tmp_path: Path
) -> None:
    assert case229.run_cli("fake") == 0
    split, web = tmp_path / "chunks", tmp_path / "web"
    split.mkdir()
    web.mkdir()
    chunk = split / f"{case229.packpath.name}_2012_06_20_001_of_001.tar"
    subprocess.run(
        ["tar", "-cf", str(chunk), "-C", str(case229.packpath.parent), case229.packpath.name],
        check=True,
    )
    _resum(chunk)
    assert main(["deliver", str(split), "--web-root", str(web)]) == 1
    assert os.listdir(web) == []


# -- item 14: input that must be refused ---------------------------------------------------------


def test_a_packpath_with_a_newline_is_refused(
    case229: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, _ = case229.commands("fake")
    argv[2] = argv[2] + "\n"
    assert main(argv) == 2
    assert "not an ALMA project code" in _one_line(capsys.readouterr().err)
    assert os.listdir(case229.packpath.parent) == []


@pytest.mark.parametrize("name", ["a/b", "../x", ".hidden", "with space", "tab\there"])
def test_an_sb_name_that_cannot_name_a_file_is_refused(
    name: str, case229: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    assert case229.run_cli("copy", "--sb-name", name) == 2
    assert "cannot be an SB name" in _one_line(capsys.readouterr().err)
    assert os.listdir(case229.packpath.parent) == []


# -- items 15 and 16: leftovers of killed runs, a directory appearing, one line a path -----------


def test_untar_removes_what_a_killed_untar_left(chunks: Path, out: Path) -> None:
    leftover = out / f".{P}.almaqa2-staging-killed"
    (leftover / P).mkdir(parents=True)
    (leftover / P / "half.bin").write_bytes(bytes(100_000))
    assert main(["untar", str(chunks), "--out", str(out)]) == 0
    assert os.listdir(out) == [P]


def test_untar_never_replaces_a_directory_that_appears(
    chunks: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from almaqa2.transfer import untar

    real = untar.check_chunks

    def and_meanwhile(*args: object, **kwargs: object) -> object:
        report = real(*args, **kwargs)  # type: ignore[arg-type]
        (out / P).mkdir()  # someone makes the directory while the chunks are extracted
        return report

    monkeypatch.setattr(untar, "check_chunks", and_meanwhile)
    assert main(["untar", str(chunks), "--out", str(out)]) == 2
    assert os.listdir(out) == [P] and os.listdir(out / P) == []


@pytest.mark.parametrize("instead", ["a directory", "a link to nothing"])
def test_a_chunk_that_is_no_file_is_the_chunk_s_fault(
    chunks: Path, out: Path, capsys: pytest.CaptureFixture[str], instead: str
) -> None:
    """A chunk whose name holds a directory, or a link to nothing, is reported as that
    chunk's problem (unreadable, or missing), by verify and by untar, which extracts
    nothing: not 'could not extract the chunk ... free some space' naming the output,
    nor the link's target alone."""
    chunk = sorted(chunks.glob("*_of_*.tar"))[1]
    chunk.unlink()
    if instead == "a directory":
        chunk.mkdir()
    else:
        chunk.symlink_to(chunks / "gone" / chunk.name)
    said = "(Is a directory)" if instead == "a directory" else "missing: "
    for command in (["verify", str(chunks)], ["untar", str(chunks), "--out", str(out)]):
        assert main([*command, "--json"]) == 1
        problems = json.loads(capsys.readouterr().out)["problems"]
        assert any(p["path"] == str(chunk) and said in p["text"] for p in problems), problems
    assert os.listdir(out) == []


@pytest.mark.parametrize(
    ("failure", "blamed"), [(errno.EIO, "the chunk"), (errno.ENOSPC, "--out")], ids=["EIO", "full"]
)
def test_a_failure_while_extracting_blames_only_the_side_that_can_have_failed(
    chunks: Path,
    out: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    failure: int,
    blamed: str,
) -> None:
    """The kernel's copy both reads a chunk and writes it out, and its error does not say
    which failed: a full or read-only output is the output's (free space), any other
    failure (an I/O error of a failing disk) names the chunk and both places to look at,
    not the output alone.  Nothing is left under --out either way."""
    chunk = sorted(chunks.glob("*_of_*.tar"))[0]

    def failing(*args: object) -> int:
        raise OSError(failure, os.strerror(failure))

    monkeypatch.setattr(os, "copy_file_range", failing)
    assert main(["untar", str(chunks), "--out", str(out)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    if blamed == "the chunk":
        assert f"reading it or writing it out failed (Input/output error): {chunk};" in said
        assert "the disk the chunks are on" in said and "--out's" in said
    else:
        assert f"could not extract the chunk (No space left on device): {out};" in said
    assert os.listdir(out) == []


def test_an_md5_file_s_text_is_printed_escaped_and_a_line_naming_nothing_passed_by(
    chunks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What an md5 file says is anybody's text: a terminal's escape sequence in it is
    printed escaped, not obeyed; a line that names no file is passed by (it made a
    'missing' problem of the chunks' folder itself), the chunk still checked by the
    set's listing."""
    first, second = sorted(chunks.glob("*_of_*.tar"))[:2]
    Path(f"{first}.md5sum").write_bytes(b"\xff\xfe\x1b[31m\n")
    Path(f"{second}.md5sum").write_bytes(b"\x1b[31mred  " + second.name.encode() + b"\n")
    assert main(["verify", str(chunks)]) == 1
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "'\\x1b[31mred'" in printed
    assert f"corrupt: {second} (expected" in printed
    assert f"missing: {chunks} " not in printed and str(first) not in printed


def test_deliver_builds_privately_and_removes_what_a_killed_deliver_left(
    chunks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    web = tmp_path / "web"
    web.mkdir()
    leftover = web / f".{P}.deliver.almaqa2-staging-killed"
    leftover.mkdir()
    (leftover / CHUNK).write_bytes(b"half")
    modes = []
    real = deliver_module._write_index

    def watching(stage: Path, *args: object) -> None:
        modes.append(stat.S_IMODE(stage.stat().st_mode))
        real(stage, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(deliver_module, "_write_index", watching)
    assert main(["deliver", str(chunks), "--web-root", str(web)]) == 0
    assert modes == [0o700], "nobody reads the chunks before the folder is complete"
    [published] = os.listdir(web)
    assert published.startswith(f"{P}-") and stat.S_IMODE((web / published).stat().st_mode) != 0o700


def test_a_problem_path_with_a_newline_stays_on_one_line(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = Path(shutil.copytree(nrao_split / "out" / P, tmp_path / P))
    (package / "two\nlines.txt").write_text("extra\n")
    capsys.readouterr()
    assert main(["verify", str(package)]) == 1
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("extra:")]
    assert "two\\nlines.txt" in line


def test_sigterm_stops_a_package_with_nothing_left(case229: Case) -> None:
    """A real process, stopped by SIGTERM while it builds: 143, no staging, no lock."""
    import signal
    import time

    argv, _ = case229.commands("copy")
    process = subprocess.Popen([*QA2, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parent = case229.packpath.parent
    prefix = package_dir.staging_prefix(case229.packpath)
    deadline = time.monotonic() + 60
    while not any(n.startswith(prefix) for n in os.listdir(parent)):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143 and b"stopped by SIGTERM" in err, err
    assert os.listdir(parent) == [], err


def test_a_ticket_s_text_and_a_web_root_s_names_are_printed_never_obeyed(
    case229: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ticket comes from another reducer and a web root's folders from anyone who can
    write there: a terminal's control sequence in what they say (a README header field, a
    folder named in a warning) reaches the terminal spelt out, on every console and in
    every log line printed, never as the control characters themselves."""
    import zipfile

    assert case229.run_cli("ticket") == 0
    (ticket,) = case229.packpath.parent.glob("*.ticket.zip")
    crafted = tmp_path / ticket.name
    with zipfile.ZipFile(ticket) as old, zipfile.ZipFile(crafted, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename.endswith("README"):
                text = data.decode()
                line = next(x for x in text.splitlines() if x.startswith("PI name"))
                data = text.replace(line, "PI name: \x1b]0;pwned\x07Marcel\x9b2J").encode()
            new.writestr(item, data)
    capsys.readouterr()
    assert main(["inspect", str(crafted)]) == 0
    said = capsys.readouterr().out
    assert "PI name: \\x1b]0;pwned\\x07Marcel\\x9b2J" in said
    assert "\x1b" not in said and "\x9b" not in said
    assert main(["inspect", str(crafted), "--json"]) == 0  # escaped as JSON, read back whole
    said = capsys.readouterr().out
    assert said.isascii() and "\x1b" not in said
    assert json.loads(said)["header"]["PI name"] == "\x1b]0;pwned\x07Marcel\x9b2J"

    web = tmp_path / "web"
    (web / "odd\x1b[2J").mkdir(parents=True)
    (web / "odd\x1b[2J" / ".delivery.json").write_text("[]")
    assert main(["deliver", "--list", "--web-root", str(web)]) == 0
    said = capsys.readouterr().err
    assert "odd\\x1b[2J" in "".join(said.split()) and "\x1b" not in said  # (wrapped)


def test_a_ticket_whose_readme_unpacks_to_600_mb_is_inspected_in_little_memory(
    case229: Case, tmp_path: Path
) -> None:
    """A 3 MB ticket zip holding a 600 MB README (a log named so, or a zip bomb): inspect
    read every file it shows whole into memory, and under a 400 MB limit said
    MemoryError with a traceback.  The header it shows is at the README's start."""
    import resource
    import zipfile

    assert case229.run_cli("ticket") == 0
    (ticket,) = case229.packpath.parent.glob("*.ticket.zip")
    crafted = tmp_path / ticket.name
    deflated = {"compression": zipfile.ZIP_DEFLATED, "compresslevel": 1}
    with zipfile.ZipFile(ticket) as old, zipfile.ZipFile(crafted, "w", **deflated) as new:
        for item in old.infolist():
            if not item.filename.endswith("README"):
                new.writestr(item, old.read(item))
                continue
            with new.open(item.filename, "w", force_zip64=True) as f:
                f.write(old.read(item))
                for _ in range(600):
                    f.write(bytes(1 << 20))
    assert crafted.stat().st_size < 5 << 20

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (400 << 20, 400 << 20))

    done = subprocess.run(
        [*QA2, "inspect", str(crafted)], preexec_fn=limited, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "Project code: 2011.0.00229.S" in done.stdout


def _within_a_minute(*argv: str) -> subprocess.CompletedProcess[str]:
    """``qa2 argv`` run as a process that must end within a minute (what waited on a pipe
    for ever fails the test instead of stopping the suite)."""
    return subprocess.run([*QA2, *argv], capture_output=True, text=True, timeout=60)


def test_a_pipe_in_place_of_a_chunk_a_ticket_a_marker_or_a_lock_is_never_waited_on(
    nrao_split: Path, tmp_path: Path, case229: Case
) -> None:
    """What others made may be a pipe that no process writes to, which a plain open waits
    on for ever: verify, untar and inspect of chunks, inspect of a ticket, a package over
    one whose marker is a pipe, and a shared lock each answer at once."""
    chunks = Path(shutil.copytree(nrao_split / "chunks", tmp_path / "chunks"))
    first = sorted(chunks.glob("*.tar"))[0]
    first.unlink()
    os.mkfifo(first)
    for argv in (["verify", str(chunks)], ["untar", str(chunks), "--out", str(tmp_path / "u")]):
        done = _within_a_minute(*argv)
        said = _one_line(done.stderr)
        assert done.returncode == 2 and first.name in said
        assert "this chunk is not a plain file" in said
    assert not (tmp_path / "u").exists()
    done = _within_a_minute("inspect", str(chunks))
    assert done.returncode == 2 and "cannot read this tar file (not a plain file" in done.stderr

    ticket = tmp_path / f"{P}.ticket.zip"
    os.mkfifo(ticket)
    done = _within_a_minute("inspect", str(ticket))
    said = _one_line(done.stderr)
    assert done.returncode == 2 and "cannot read this ticket file (not a plain file" in said

    assert case229.run_cli("fake") == 0
    (case229.packpath / package_dir.MARKER).unlink()
    os.mkfifo(case229.packpath / package_dir.MARKER)
    argv, _ = case229.commands("copy")
    done = _within_a_minute(*argv)
    assert done.returncode == 2 and "was not made by almaqa2" in _one_line(done.stderr)

    locks = tmp_path / "locks"
    locks.mkdir()
    os.mkfifo(locks / "analysisUtils.lock")
    done = _within_a_minute("lock", "status", "--dir", str(locks))
    assert done.returncode == 0 and "locked by unknown@unknown" in " ".join(done.stdout.split())
