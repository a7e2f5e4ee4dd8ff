"""``qa2 deliver``: chunks published by hard link (or checked copy) into a new unguessable
directory of the web root, with an index.html whose links a real browser follows."""

from __future__ import annotations

import hashlib
import html.parser
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from almaqa2.cli import main

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
        [p.name for p in sources] + ["index.html"]
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


@pytest.mark.parametrize("damage", ["no web root", "a missing chunk", "two projects"])
def test_bad_input_publishes_nothing(
    nrao_split: Path, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    web = tmp_path / "web"
    chunks = Path(shutil.copytree(nrao_split / "chunks", tmp_path / "chunks"))
    if damage != "no web root":
        web.mkdir()
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


# -- in a real browser ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str) -> None:
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing answers at {url}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A web root served by ``python -m http.server`` on 127.0.0.1, and its address."""
    web = tmp_path / "web"
    web.mkdir()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=web,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/")
        yield web, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


class _Browser:
    """Headless Debian Chromium driven by chromedriver's W3C WebDriver protocol (JSON over
    HTTP, spoken here with urllib: no client library needed)."""

    ARGS = (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    )

    def __init__(self, downloads: Path, profile: Path):
        self.port = _free_port()
        self.driver = subprocess.Popen(
            ["chromedriver", f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(f"http://127.0.0.1:{self.port}/status")
        options = {
            "binary": shutil.which("chromium"),
            "args": [*self.ARGS, f"--user-data-dir={profile}"],
            "prefs": {
                "download.default_directory": str(downloads),
                "download.prompt_for_download": False,
                "profile.default_content_setting_values.automatic_downloads": 1,
            },
        }
        capabilities = {"browserName": "chrome", "goog:chromeOptions": options}
        session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self.session = f"/session/{session['sessionId']}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.load(answer)["value"]

    def open(self, url: str) -> None:
        self._call("POST", f"{self.session}/url", {"url": url})

    def click_link(self, text: str) -> None:
        found = self._call("POST", f"{self.session}/element", {"using": "link text", "value": text})
        element = next(iter(found.values()))
        self._call("POST", f"{self.session}/element/{element}/click", {})

    def close(self) -> None:
        try:
            self._call("DELETE", self.session)
        finally:
            self.driver.terminate()
            self.driver.wait()


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
    browser = _Browser(downloads, tmp_path / "profile")
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
    assert code == 0 and done["md5"] == [f"{P}_uid___A001_X13e_X1fe.md5sums"]
    for entry in done["files"]:
        assert entry["md5"] == _md5(chunks / entry["name"])
