"""`make demo`'s script runs end to end with the installed `qa2` and the standard tools."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_demo_script(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DEMO_OUT": str(tmp_path / "demo"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "md5sum -c manifest.md5: all files OK" in done.stdout
    assert "No errors detected" in done.stdout
    assert "|-- uid___A002_X3c9295_X8c.ms.split/" in done.stdout
    assert (tmp_path / "demo" / "2011.0.00229.S" / "manifest.md5").is_file()
    assert "md5sum -c of the chunk list: all chunks OK" in done.stdout
    assert "qa2 verify chunks: OK" in done.stdout
    assert "corrupt: " in done.stdout and "FAILED" in done.stdout
    assert (tmp_path / "demo" / "unpacked" / "2011.0.00229.S" / "manifest.md5").is_file()
    assert "in Chromium: 6 QA2 plots shown" in done.stdout  # the review page, really drawn
    assert (tmp_path / "demo" / "review.png").stat().st_size > 10_000
    assert len(list((tmp_path / "demo" / "web").glob("2011.0.00229.S-*/index.html"))) == 1
    assert "qa2 verify staged: OK" in done.stdout
    assert "pipeline calibration, 2 EB(s)" in done.stdout
    assert "calibration/uid___A002_X3c9295_X8c.calibration.tgz" in done.stdout
    assert "member.uid___A001_X74_X29.README.txt" in done.stdout


def test_ci_runs_make_test() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make demo" in (ROOT / "README.md").read_text().split("\n## ", 1)[0]
