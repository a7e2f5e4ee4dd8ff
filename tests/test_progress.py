"""Issue 18: the progress bar as a reducer sees it, in a real pseudo-terminal: the rate, the
time so far, which file of how many, and a closing line; nothing of it when piped.

The work is a ``qa2 download`` from a server on 127.0.0.1 that sends its files slowly
(about 4 s in all), so that the bar appears (it waits 2 s) without a large file.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import re
import select
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from test_download import ASDMS, _asdm_tar

from conftest import QA2

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class SlowHandler(http.server.SimpleHTTPRequestHandler):
    """Sends each file in 8 KB pieces, 80 ms apart (about 100 KB/s)."""

    def log_message(self, *args: object) -> None:  # quiet
        pass

    pause = 0.08  # seconds between pieces

    def copyfile(self, source: BinaryIO, outputfile: BinaryIO) -> None:  # type: ignore[override]
        with contextlib.suppress(ConnectionError):  # a client that hung up: nothing to say
            while piece := source.read(8192):
                outputfile.write(piece)
                outputfile.flush()
                time.sleep(self.pause)


@pytest.fixture
def slow_site(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "site"
    root.mkdir()
    for uid in ASDMS:
        _asdm_tar(root / f"{uid}.tar", uid)  # ~200 KB each
    sums = "".join(
        f"{hashlib.md5((root / f'{uid}.tar').read_bytes()).hexdigest()}  {uid}.tar\n"
        for uid in ASDMS
    )
    (root / "md5sums.txt").write_text(sums)
    links = "".join(f'<a href="{u}.tar">{u}.tar</a> ' for u in ASDMS)
    (root / "index.html").write_text(f'<html>{links}<a href="md5sums.txt">md5</a></html>')
    handler = lambda *a, **k: SlowHandler(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()


def _in_a_terminal(argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as its stdin, stdout and stderr; what it showed."""
    main, child = os.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, env=env)
    os.close(child)
    shown = bytearray()
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            proc.kill()
            raise AssertionError("no output for 60 s")
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child side closed
            break
        if not data:
            break
        shown += data
    os.close(main)
    return proc.wait(), shown.decode(errors="replace")


def test_a_terminal_shows_rate_elapsed_item_and_a_closing_line(
    slow_site: str, tmp_path: Path
) -> None:
    code, shown = _in_a_terminal([*QA2, "download", slow_site, "--out", str(tmp_path / "raw")])
    assert code == 0, shown
    text = ANSI.sub("", shown)
    frames = [f for f in text.split("\r") if f.startswith("downloading")]
    assert frames, text
    assert any(re.search(r"\d+(\.\d+)? kB/s", f) for f in frames), frames[-3:]  # the rate
    assert any(re.search(r"\b0:00:0[1-9]\b", f) for f in frames), frames[-3:]  # time so far
    assert any(re.search(r"uid___\w+\.tar, 2 of 2", f) for f in frames), frames[-3:]  # the file
    closing = re.search(r"downloading: (\d+\.\d) KB in (\d\.\d) s, (\d+\.\d) KB/s", text)
    assert closing, text[-400:]
    size = sum(p.stat().st_size for p in (tmp_path / "raw").glob("*.tar")) / 1e3
    assert float(closing[1]) == pytest.approx(size, abs=0.1)  # what was fetched, as said
    assert 2 <= float(closing[2]) <= 30


def test_no_bar_and_no_closing_line_when_piped(slow_site: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [*QA2, "download", slow_site, "--out", str(tmp_path / "raw")],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "160"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "downloading" not in done.stderr and "\x1b[" not in done.stderr + done.stdout
    assert "md5 OK" in done.stdout
