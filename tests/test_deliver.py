"""``qa2 deliver``: chunks published by hard link (or checked copy) into a new unguessable
directory of the web root, with an index.html whose links a real browser follows."""

from __future__ import annotations

import hashlib
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from almaqa2.cli import main
from almaqa2.testing.browser import Browser, free_port, wait_for

from conftest import run_on_disk, run_read_only

P = "2013.1.00123.S"
TOKEN = re.compile(rf"^{re.escape(P)}-[A-Za-z0-9_-]{{32}}$")


def _deliver(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["deliver", "--json", *map(str, argv)])
    text = capsys.readouterr().out
    return code, json.loads(text) if code == 0 else {}


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v for k, v in attrs if tag == "a" and k == "href" and v]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_chunks_are_linked_into_a_new_unguessable_folder_with_an_index(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    web = tmp_path / "web"
    web.mkdir()
    code, done = _deliver(capsys, nrao_split / "chunks", "--web-root", web)
    assert code == 0
    folder = Path(done["folder"])
    assert folder.parent == web and TOKEN.match(folder.name)
    sources = sorted((nrao_split / "chunks").iterdir())
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [p.name for p in sources] + ["index.html", ".delivery.json"]
    )
    for source in sources:
        assert (folder / source.name).stat().st_ino == source.stat().st_ino, "a hard link"
    index = (folder / "index.html").read_text()
    parser = _Links()
    parser.feed(index)
    assert sorted(parser.links) == sorted(p.name for p in sources)
    for entry in done["files"]:
        chunk = folder / entry["name"]
        assert entry["md5"] == _md5(chunk) and entry["md5"] in index
        assert entry["size"] == chunk.stat().st_size and str(entry["size"]) in index
    check = subprocess.run(["md5sum", "-c", f"{P}_uid___A001_X13e_X1fe.md5sums"], cwd=folder)
    assert check.returncode == 0
    second = _deliver(capsys, nrao_split / "chunks", "--web-root", web)[1]
    assert second["folder"] != done["folder"], "each delivery gets its own address"


def test_across_file_systems_the_chunks_are_copied_and_checked(
    nrao_split: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shm = Path("/dev/shm")
    assert shm.stat().st_dev != nrao_split.stat().st_dev, "needs /dev/shm as a second file system"
    web = shm / f"almaqa2-web-{os.getpid()}"
    web.mkdir()
    try:
        code, done = _deliver(capsys, nrao_split / "chunks", "--web-root", web)
        assert code == 0
        for entry in done["files"]:
            copy = Path(done["folder"]) / entry["name"]
            assert copy.stat().st_ino != (nrao_split / "chunks" / entry["name"]).stat().st_ino
            assert _md5(copy) == entry["md5"]
    finally:
        shutil.rmtree(web)


def test_a_package_is_split_into_the_new_folder(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    web = tmp_path / "web"
    web.mkdir()
    code, done = _deliver(capsys, nrao_split / "out" / P, "--web-root", web, "--max-size", "30K")
    assert code == 0 and len(done["files"]) > 1
    assert main(["verify", done["folder"]]) == 0


def test_a_package_whose_file_changed_since_its_manifest_is_not_published(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hard-mode package shares its files with the reduction: one the reducer changed
    after packaging no longer matches the manifest.  Given the package, deliver split it
    and published it unchecked (chunks given were checked); the PI's verify failed."""
    package = Path(shutil.copytree(nrao_split / "out" / P, tmp_path / "out" / P))
    changed = next(p for p in sorted(package.rglob("*.py")) if p.is_file())
    changed.write_text(changed.read_text() + "# changed after packaging\n")
    web = tmp_path / "web"
    web.mkdir()
    capsys.readouterr()
    assert main(["deliver", str(package), "--web-root", str(web)]) == 1
    said = " ".join(capsys.readouterr().err.split())
    assert f"corrupt: {changed.relative_to(package.parent)} (expected" in said
    assert os.listdir(web) == []


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_web_root_inside_the_package_is_refused_in_its_own_words(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], dry_run: bool
) -> None:
    """The split refused it as chunks written into the package they hold, telling the
    user to choose an --out, an option deliver does not have."""
    package = Path(shutil.copytree(nrao_split / "out" / P, tmp_path / "out" / P))
    before = sorted(package.rglob("*"))
    capsys.readouterr()
    argv = ["deliver", str(package), "--web-root", str(package / "web")]
    assert main([*argv, *(["--dry-run"] if dry_run else [])]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert said == (
        f"error: the web root cannot be inside a package: {package / 'web'};"
        f" choose a --web-root outside {package}."
    )
    assert sorted(package.rglob("*")) == before


@pytest.mark.parametrize("damage", ["no parent of the web root", "a missing chunk", "two projects"])
def test_bad_input_publishes_nothing(
    nrao_split: Path, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    web = tmp_path / "web"
    chunks = Path(shutil.copytree(nrao_split / "chunks", tmp_path / "chunks"))
    if damage == "no parent of the web root":
        web = tmp_path / "typo" / "web"
    if damage == "a missing chunk":
        sorted(chunks.glob("*.tar"))[1].unlink()
    if damage == "two projects":
        first = sorted(chunks.glob("*.tar"))[0]
        shutil.copy(first, chunks / "2011.0.00229.S_2012_06_20_001_of_001.tar")
    capsys.readouterr()
    assert main(["deliver", str(chunks), "--web-root", str(web)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err and err.startswith("error:")
    assert not web.exists() or os.listdir(web) == []


def test_an_expiry_past_any_date_is_refused_and_publishes_nothing(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--expires 99999999 (days): the date past the year 9999 ended in a traceback."""
    web = tmp_path / "web"
    argv = ["deliver", str(nrao_split / "chunks"), "--web-root", str(web)]
    assert main([*argv, "--expires", "99999999"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("error: Invalid value for '--expires': 99999999 is not in the range")
    assert not web.exists()


@pytest.mark.parametrize("given", ["package", "chunks"])
def test_a_full_web_root_says_so_and_publishes_nothing(
    nrao_split: Path, tmp_path: Path, given: str
) -> None:
    """A web root (a real disk of 64 KB) that fills up while a package is split into it,
    or chunks are copied into it (another file system: no links), is one sentence that
    says to free some space there or choose another place (it spoke of --out, which
    deliver has not), and nothing is published."""
    web = tmp_path / "web"
    web.mkdir()
    path = nrao_split / "out" / P if given == "package" else nrao_split / "chunks"
    done, left = run_on_disk(["deliver", str(path), "--web-root", str(web)], web, "size=64k")
    assert done.returncode == 2, done.stderr
    err = " ".join(done.stderr.split())
    assert "No space left on device" in err and "free some space" in err, err
    assert "--out" not in err and str(web) in err
    assert left == []


# -- in a real browser ---------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A web root served by ``python -m http.server`` on 127.0.0.1, and its address."""
    web = tmp_path / "web"
    web.mkdir()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=web,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/")
        yield web, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


def _downloaded(path: Path, size: int) -> Path:
    """Wait for Chromium to finish writing ``path``: it may reserve the name with an empty
    file, writes a ``.crdownload`` and renames it."""
    for _ in range(600):
        done = path.is_file() and path.stat().st_size == size
        if done and not list(path.parent.glob("*.crdownload")):
            return path
        time.sleep(0.05)
    raise AssertionError(f"the browser did not download {path.name}")


def test_a_browser_downloads_the_chunks_from_the_index(
    nrao_split: Path, served: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    web, address = served
    code, done = _deliver(capsys, nrao_split / "chunks", "--web-root", web)
    assert code == 0
    folder = Path(done["folder"])
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser = Browser(downloads, tmp_path / "profile")
    try:
        browser.open(f"{address}/{folder.name}/index.html")
        for entry in done["files"]:
            browser.click_link(entry["name"])
            got = _downloaded(downloads / entry["name"], entry["size"])
            assert _md5(got) == entry["md5"] == _md5(nrao_split / "chunks" / entry["name"])
        listing = f"{P}_uid___A001_X13e_X1fe.md5sums"
        browser.click_link(listing)
        _downloaded(downloads / listing, (folder / listing).stat().st_size)
        # checked before the browser closes: Chromium deletes a download it has renamed
        # into place but not yet marked complete when it is shut down (seen under load)
        check = subprocess.run(["md5sum", "-c", listing], cwd=downloads, capture_output=True)
        assert check.returncode == 0, check.stdout
    finally:
        browser.close()


def test_chunks_with_only_the_list_of_md5s_are_published(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chunks = Path(shutil.copytree(nrao_split / "chunks", tmp_path / "chunks"))
    for own in chunks.glob("*.tar.md5sum"):
        own.unlink()
    web = tmp_path / "web"
    web.mkdir()
    code, done = _deliver(capsys, chunks, "--web-root", web)
    assert code == 0 and done["checksum_files"] == [f"{P}_uid___A001_X13e_X1fe.md5sums"]
    for entry in done["files"]:
        assert entry["md5"] == _md5(chunks / entry["name"])


def test_the_page_the_link_and_the_message_do_with_plain_tools(
    nrao_split: Path, served: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17: with --base-url the link to send and a text for the ticket are printed; the
    page's own instructions (wget -i, md5sum -c, tar xf) fetch, check and unpack the package
    with the standard tools, nothing of ours."""
    web, address = served
    code, done = _deliver(
        capsys, nrao_split / "chunks", "--web-root", web, "--base-url", address,
        "--expires", "14", "--contact", "drm@example.org",
    )  # fmt: skip
    assert code == 0
    folder = Path(done["folder"])
    assert done["url"] == f"{address}/{folder.name}/"
    assert done["url"] in done["message"] and "wget -i" in done["message"]
    assert done["tags"] == ["uid___A001_X13e_X1fe"] and done["contact"] == "drm@example.org"
    page = (folder / "index.html").read_text()
    for fact in (P, "uid___A001_X13e_X1fe", done["expires"], "drm@example.org", "md5sum -c"):
        assert fact in page, fact
    assert "qa2" not in page.replace(P, "")  # the PI has no qa2
    assert "text-decoration: none" in page  # no underline hides the underscores
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    urls = urllib.request.urlopen(f"{done['url']}files.txt").read().decode().split()
    assert len(urls) == len(done["files"]) + len(done["checksum_files"])
    for url in urls:
        (fetched / url.rsplit("/", 1)[1]).write_bytes(urllib.request.urlopen(url).read())
    steps = (
        f"md5sum -c {P}_uid___A001_X13e_X1fe.md5sums"
        f' && for t in *.tar; do tar xf "$t"; done && md5sum -c {P}/manifest.md5'
    )
    done_steps = subprocess.run(["sh", "-c", steps], cwd=fetched, capture_output=True, text=True)
    assert done_steps.returncode == 0, done_steps.stdout + done_steps.stderr
    capsys.readouterr()
    assert main(["deliver", str(nrao_split / "chunks"), "--web-root", str(web),
                 "--base-url", address]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert f"send: {address}/" in text and "Download page:" in text


def test_old_deliveries_are_listed_and_removed(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "someone-elses").mkdir()
    first = _deliver(capsys, nrao_split / "chunks", "--web-root", web)[1]
    second = _deliver(capsys, nrao_split / "chunks", "--web-root", web, "--expires", "1")[1]
    capsys.readouterr()
    assert main(["deliver", "--list", "--web-root", str(web), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["deliveries"]
    assert sorted(d["folder"] for d in listed) == sorted([first["folder"], second["folder"]])
    assert not any(d["expired"] for d in listed)
    assert main(["deliver", "--remove", Path(first["folder"]).name, "--web-root", str(web)]) == 0
    assert not Path(first["folder"]).exists() and Path(second["folder"]).is_dir()
    assert (web / "someone-elses").is_dir()
    assert (nrao_split / "chunks").is_dir() and any((nrao_split / "chunks").iterdir())
    capsys.readouterr()
    assert main(["deliver", "--remove", "someone-elses", "--web-root", str(web)]) == 2
    assert "no delivery of this name" in capsys.readouterr().err
    assert (web / "someone-elses").is_dir()
    for nameless in (".", "..", "/"):  # no folder's name: the text given is named
        assert main(["deliver", "--remove", nameless, "--web-root", str(web)]) == 2
        assert f"under the web root: {nameless};" in capsys.readouterr().err
    assert Path(second["folder"]).is_dir() and (web / "someone-elses").is_dir()


def test_a_delivery_on_a_read_only_web_root_is_said_so_when_removed(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "Read-only file system: <a chunk's md5 file, by its name alone>; ...
    choose another place", as of a write."""
    web = tmp_path / "web"
    folder = Path(_deliver(capsys, nrao_split / "chunks", "--web-root", web)[1]["folder"])
    done = run_read_only(["deliver", "--web-root", str(web), "--remove", folder.name], web)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2 and said == (
        f"error: the delivery could not be removed (Read-only file system): {folder}; remove"
        " it where the web root is mounted writable."
    ), said
    assert (folder / "index.html").is_file()


@pytest.mark.parametrize(
    "record",
    [
        b"[1, 2]",
        b'"a string"',
        b'{"created": "2026-01-01", "files": [], "expires": "soon"}',
        b'{"created": "2026-01-01", "files": [], "expires": 5}',
        b'{"created": 7, "files": []}',
        b'{"created": "2026-01-01", "files": {"a": 1}}',
        b'{"created": "2026-01-01", "files": [{"size": "3"}]}',
        b'{"created": "2026-01-01"}',
        b"\xff\xfe",
    ],
)
def test_a_record_deliver_never_writes_is_passed_by_with_a_warning(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], record: bytes
) -> None:
    """A folder of the web root whose ``.delivery.json`` is not a record ``deliver``
    writes (edited by hand, or someone else's) is neither listed nor removed, and the
    deliveries beside it are; it was a traceback."""
    web = tmp_path / "web"
    (web / "odd").mkdir(parents=True)
    (web / "odd" / ".delivery.json").write_bytes(record)
    ours = _deliver(capsys, nrao_split / "chunks", "--web-root", web)[1]
    assert main(["deliver", "--list", "--web-root", str(web)]) == 0
    said = capsys.readouterr()
    assert Path(ours["folder"]).name in said.out and "odd" not in said.out
    assert "not a delivery record qa2 deliver writes" in said.err and "odd" in said.err
    assert main(["deliver", "--remove", "odd", "--web-root", str(web)]) == 2
    assert "no delivery of this name" in capsys.readouterr().err
    assert (web / "odd" / ".delivery.json").read_bytes() == record


def test_the_message_names_the_project_whatever_the_token_holds() -> None:
    """The token is URL-safe base64: it may hold '-', which must not cut the project."""
    from almaqa2.transfer.deliver import Published

    done = Published(Path(f"/web/{P}-ab-c_d"), ((f"{P}_t_001_of_001.tar", 10, "x"),), (),
                     ("t",), "2026-12-02T00:00:00Z", "2027-01-01")  # fmt: skip
    assert f"The ALMA data of {P} (t) are ready" in done.message()
