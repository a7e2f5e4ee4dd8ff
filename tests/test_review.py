"""The DRM's review page (issue 17), in Debian's Chromium: ``review.html`` opened from the
unzipped ticket, from the ticket zip's bytes served on 127.0.0.1, and the copy beside the
ticket files with its images embedded.  Each shows every checklist, every QA2 plot (loaded:
naturalWidth > 0), the fluxscale results, the README and the package tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from almaqa2.testing.browser import Browser, free_port, wait_for

from conftest import Case, make_case

SERVE_ZIP = """
import http.server, mimetypes, sys, urllib.parse, zipfile
ticket = zipfile.ZipFile(sys.argv[1])
class Zipped(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = urllib.parse.unquote(self.path.lstrip("/").split("?")[0])
        try:
            data = ticket.read(name)
        except KeyError:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", mimetypes.guess_type(name)[0] or "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), Zipped).serve_forever()
"""

SEEN = """
const images = [...document.querySelectorAll('#plots img')];
return {
    text: document.body.innerText,
    images: images.map(i => [i.getAttribute('alt'), i.complete && i.naturalWidth > 0]),
    links: [...document.querySelectorAll('#plots a')].map(a => a.href),
    flux_rows: document.querySelectorAll('#fluxscale tr').length,
};
"""


@pytest.fixture(scope="module")
def ticketed(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """The Allegro case (checklists beside origpath, QA2 plots, fluxscale results) in
    ticket mode; one plot's name holds what ends a link's path unless quoted, another's
    is not UTF-8."""
    case = make_case("allegro", tmp_path_factory.mktemp("review"))
    plot = sorted(case.origpath.rglob("qa2/*.png"))[0]
    for name in ("amp #1 100%.png", os.fsdecode(b"caf\xe9.png")):  # the second not UTF-8
        shutil.copy(plot, plot.with_name(name))
    assert case.run_cli("ticket") == 0
    return case


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    opened = Browser(tmp_path / "downloads", tmp_path / "profile")
    try:
        yield opened
    finally:
        opened.close()


def _ticket(case: Case) -> Path:
    return next(case.packpath.parent.glob("*.ticket.zip"))


def _check(seen: dict[str, Any], ticket: Path) -> None:
    with zipfile.ZipFile(ticket) as zf:
        names = zf.namelist()
        readme = zf.read("README").decode()
    plots = [n for n in names if n.endswith(".png")]
    checklists = [n for n in names if "Checklist" in n]
    assert len(plots) == 4 and len(checklists) == 3
    assert any(n.endswith("amp #1 100%.png") for n in plots)
    assert sorted(alt for alt, _ in seen["images"]) == sorted(plots)
    assert all(loaded for _, loaded in seen["images"]), seen["images"]
    for name in checklists:
        assert name in seen["text"]
    assert readme.splitlines()[0] in seen["text"] and "Project title:" in seen["text"]
    assert "Package tree" in seen["text"] and "member_ouss_id/" in seen["text"]
    assert seen["flux_rows"] >= 5  # a header and a row per spw of J1751+0939
    assert "Expected size" in seen["text"] and "package total" in seen["text"]


def test_the_review_page_of_the_unzipped_ticket(
    ticketed: Case, browser: Browser, tmp_path: Path
) -> None:
    unzipped = tmp_path / "ticket"
    done = subprocess.run(["unzip", "-q", str(_ticket(ticketed)), "-d", str(unzipped)])
    assert done.returncode == 0
    browser.open((unzipped / "review.html").as_uri())
    seen = browser.run(SEEN)
    _check(seen, _ticket(ticketed))
    assert all(link.startswith(unzipped.as_uri()) for link in seen["links"])  # full size
    assert browser.screenshot(tmp_path / "review.png").stat().st_size > 10_000


def test_the_browser_leaves_no_temporary_files(tmp_path: Path) -> None:
    """Chromium's go to a directory of the browser's own, removed when it closes: one it
    failed to remove on a busy machine would outlive the test that started it."""
    browser = Browser(tmp_path / "downloads", tmp_path / "profile")
    try:
        browser.open("about:blank")
        made = [entry.name for entry in browser.scratch.iterdir()]
        assert any(name.startswith("org.chromium.") for name in made)
    finally:
        browser.close()
    assert not browser.scratch.exists()


def test_the_review_page_served_from_the_zip(ticketed: Case, browser: Browser) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVE_ZIP, str(_ticket(ticketed)), str(port)])
    try:
        wait_for(f"http://127.0.0.1:{port}/README")
        browser.open(f"http://127.0.0.1:{port}/review.html")
        _check(browser.run(SEEN), _ticket(ticketed))
    finally:
        server.terminate()
        server.wait()


def test_the_review_page_beside_the_ticket_travels_alone(
    ticketed: Case, browser: Browser, tmp_path: Path
) -> None:
    """Its images are embedded: copied anywhere, it shows them all."""
    beside = next(ticketed.packpath.parent.glob("*.review.html"))
    alone = tmp_path / "elsewhere" / beside.name
    alone.parent.mkdir()
    alone.write_bytes(beside.read_bytes())
    browser.open(alone.as_uri())
    seen = browser.run(SEEN)
    _check(seen, _ticket(ticketed))
    assert all(link.startswith("data:image/png;base64,") for link in seen["links"])


def test_the_warnings_of_the_run_head_the_page(tmp_path: Path) -> None:
    from almaqa2.package.readme import TEMPLATE

    case = make_case("flat", tmp_path)
    (case.origpath / "notes_for_me.xyz").write_text("not for the PI")
    case.readme.write_text(TEMPLATE)
    assert case.run_cli("ticket") == 0
    with zipfile.ZipFile(_ticket(case)) as zf:
        page = zf.read("review.html").decode()
    warnings = page.split('id="warnings"', 1)[1].split("</section>", 1)[0]
    assert "unclassified, not packaged: notes_for_me.xyz" in warnings
    assert "leaves PI name, Project title, Configuration, Proposed rms blank" in warnings


def test_inspect_summarises_a_ticket_zip_or_tar(
    ticketed: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from almaqa2.cli import main

    zipped = _ticket(ticketed)
    for path in (zipped, zipped.with_suffix(".tar")):
        assert main(["inspect", str(path)]) == 0
        text = capsys.readouterr().out
        assert "Project code: 2013.1.12345.S" in text and "PI name: A. Astronomer" in text
        assert "3 checklist(s), 4 QA2 plot(s)" in text and "expected package size" in text
        assert main(["inspect", str(path), "--json"]) == 0
        found = json.loads(capsys.readouterr().out)
        assert len(found["checklists"]) == 3 and found["expected_total"] > 0
        assert found["warnings"] == [] and not found["dummy"]
    fake = make_case("flat", tmp_path)
    fake.readme.write_text("Project code:\n")
    assert fake.run_cli("fake") == 0
    capsys.readouterr()
    assert main(["inspect", str(_ticket(fake)), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["dummy"]
    ticketed_blank = make_case("flat", tmp_path / "blank")
    ticketed_blank.readme.write_text("Project code:\n")
    assert ticketed_blank.run_cli("ticket") == 0
    capsys.readouterr()
    assert main(["inspect", str(_ticket(ticketed_blank))]) == 0
    assert "warning: the README header leaves PI name" in capsys.readouterr().out


def test_jira_gets_what_the_ticket_needs_attached(tmp_path: Path) -> None:
    """Seed 002's JIRA/ directory: the ticket zip, the checklists, and the review page."""
    case = make_case("allegro", tmp_path)
    jira = tmp_path / "JIRA"
    assert case.run_cli("ticket", "--jira", str(jira)) == 0
    assert sorted(p.name for p in jira.iterdir()) == [
        "2013.1.12345.S.B6_IRAS12345.review.html",
        "2013.1.12345.S.B6_IRAS12345.ticket.zip",
        "Checklist_SB_B6_IRAS12345.txt",
        "Checklist_SB_B6_IRAS12345_uid___A002_X4sda4d_Xa12.txt",
        "Checklist_SB_B6_IRAS12345_uid___A002_Xdd9c61_X66d.txt",
    ]
    assert (jira / "2013.1.12345.S.B6_IRAS12345.ticket.zip").read_bytes() == _ticket(
        case
    ).read_bytes()
    fake = make_case("flat", tmp_path / "fake")
    assert fake.run_cli("fake", "--jira", str(tmp_path / "JIRA2")) == 2
    assert not (tmp_path / "JIRA2").exists() and not fake.packpath.exists()


@pytest.mark.parametrize("inside", ["the reduction", "the package"])
def test_jira_is_never_filled_inside_the_reduction_or_a_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], inside: str
) -> None:
    """The reduction is never written; a package holds only what its run put there."""
    case = make_case("allegro", tmp_path)
    assert case.run_cli("ticket") == 0
    where = {"the reduction": case.origpath, "the package": case.packpath}[inside]
    before = sorted(where.rglob("*"))
    capsys.readouterr()
    assert case.run_cli("ticket", "--jira", str(where / "JIRA")) == 2
    said = " ".join(capsys.readouterr().err.split())
    if inside == "the reduction":
        assert "the --jira folder is inside the reduction directory" in said, said
    else:
        assert f"the --jira folder cannot be inside a package: {where / 'JIRA'};" in said, said
    assert sorted(where.rglob("*")) == before
