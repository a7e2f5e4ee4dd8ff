"""A real browser for the tests and the demo: headless Debian Chromium driven through
chromedriver's W3C WebDriver protocol (JSON over HTTP, spoken with urllib: no client
library), on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str) -> None:
    """Until something answers at ``url`` (10 s at most)."""
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing answers at {url}")


class Browser:
    """One Chromium session; ``close`` ends it and stops chromedriver.

    Chromium's own temporary directories go to ``scratch``, which ``close`` removes: one
    Chromium fails to remove on a busy machine would otherwise stay in /tmp for good.  It is
    a short path of its own, as the sockets Chromium makes there must be."""

    ARGS = (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--allow-file-access-from-files",
        "--window-size=1280,2000",
    )

    def __init__(self, downloads: Path, profile: Path):
        self.port = free_port()
        self.scratch = Path(tempfile.mkdtemp(prefix="qa2-browser-"))
        self.driver = subprocess.Popen(
            ["chromedriver", f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": str(self.scratch)},
        )
        wait_for(f"http://127.0.0.1:{self.port}/status")
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

    def run(self, script: str, *args: Any) -> Any:
        """The value of JavaScript ``script`` (a function body) run in the page."""
        body = {"script": script, "args": list(args)}
        return self._call("POST", f"{self.session}/execute/sync", body)

    def click_link(self, text: str) -> None:
        found = self._call("POST", f"{self.session}/element", {"using": "link text", "value": text})
        element = next(iter(found.values()))
        self._call("POST", f"{self.session}/element/{element}/click", {})

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self._call("GET", f"{self.session}/screenshot")))
        return path

    def close(self) -> None:
        try:
            self._call("DELETE", self.session)
        finally:
            self.driver.terminate()
            self.driver.wait()
            shutil.rmtree(self.scratch)
