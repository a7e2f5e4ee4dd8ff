"""Issue 18: Ctrl-C (SIGINT) and SIGTERM in the middle of the commands that write the
most: exit 130 or 143, one sentence, nothing half-made, every lock released.

Each command runs as a real process on a ~200 MB reduction (or, for ``download``, against
a slow server on 127.0.0.1); the signal is sent once its work is seen under way (its
staging directory or ``.part`` file exists).  Afterwards the destination holds what it
held before (``download`` keeps its ``.part`` file: the next run resumes it), and the same
command run again succeeds, so no lock was left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from almaqa2.cli import main
from almaqa2.testing.reductions import HEADER
from test_progress import SlowHandler, slow_site  # noqa: F401 - slow_site: a fixture

QA2 = [
    sys.executable,
    "-c",
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from almaqa2.launch import qa2; qa2()",
]
"""qa2 as a terminal starts it, whoever started the tests: a shell starts a job in the
background (a test run, say) with SIGINT ignored, and Python keeps it ignored."""
PROJECT = "2019.1.01234.S"
CODES = {signal.SIGINT: (130, "interrupted; nothing half-written was kept"),
         signal.SIGTERM: (143, "stopped by SIGTERM; nothing half-written was kept")}  # fmt: skip


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A reduction with one EB and 200 MB of calibration tables, its copy package and the
    package's chunks."""
    root = tmp_path_factory.mktemp("signals")
    uid = "uid___A002_Xb00001_X1"
    eb = root / "reduction" / "SB1" / "X1"
    eb.mkdir(parents=True)
    (eb / f"{uid}.ms.scriptForCalibration.py").write_text("# calibration\n")
    block = os.urandom(1 << 20)
    for t in range(4):
        table = eb / f"{uid}.ms.split.cal{t}"
        table.mkdir()
        (table / "table.dat").write_bytes(b"table")
        with open(table / "table.f0", "wb") as f:
            for i in range(50):
                f.write(f"{t} {i}".encode().ljust(16) + block[16:])
    readme = root / "README.header.txt"
    readme.write_text(HEADER)
    (root / "out").mkdir()
    package = root / "out" / PROJECT
    argv = ["package", str(eb.parent), str(package), "--readme", str(readme), "--mode", "copy"]
    assert main(argv) == 0
    (root / "chunks").mkdir()
    assert main(["tarsplit", str(package), "--out", str(root / "chunks")]) == 0
    return {"root": root, "origpath": eb.parent, "readme": readme, "package": package,
            "chunks": root / "chunks"}  # fmt: skip


def _listing(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*"))


def _stopped(argv: list[str], under_way: Callable[[], bool], signum: int) -> str:
    """Run ``argv``; once ``under_way()``, send ``signum``; check the code, return stderr."""
    process = subprocess.Popen([*QA2, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not under_way():
        assert process.poll() is None, "the work ended before it was seen under way"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    code, sentence = CODES[signal.Signals(signum)]
    said = [line for line in err.decode().splitlines() if line.strip()]
    assert process.returncode == code and said == [sentence], (process.returncode, said)
    return err.decode()


def _started(directory: Path, *patterns: str) -> Callable[[], bool]:
    return lambda: any(p for pattern in patterns for p in directory.glob(pattern))


SIGNALS = [signal.SIGINT, signal.SIGTERM]


@pytest.mark.parametrize("signum", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_package(big: dict[str, Path], tmp_path: Path, signum: int) -> None:
    package = tmp_path / PROJECT
    argv = ["package", str(big["origpath"]), str(package), "--readme", str(big["readme"]),
            "--mode", "copy"]  # fmt: skip
    _stopped(argv, _started(tmp_path, f".{PROJECT}.almaqa2-staging-*"), signum)
    assert os.listdir(tmp_path) == []
    assert main(argv) == 0  # no lock left behind


@pytest.mark.parametrize("signum", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_tarsplit(big: dict[str, Path], tmp_path: Path, signum: int) -> None:
    argv = ["tarsplit", str(big["package"]), "--out", str(tmp_path), "--max-size", "60M",
            "--date", "2019-10-01"]  # fmt: skip
    _stopped(argv, _started(tmp_path, "*.part"), signum)
    assert os.listdir(tmp_path) == []
    assert main(argv) == 0


@pytest.mark.parametrize("signum", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_untar(big: dict[str, Path], tmp_path: Path, signum: int) -> None:
    argv = ["untar", str(big["chunks"]), "--out", str(tmp_path)]
    _stopped(argv, _started(tmp_path, f".{PROJECT}.almaqa2-staging-*"), signum)
    assert os.listdir(tmp_path) == []
    assert main(argv) == 0


@pytest.mark.parametrize("signum", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_deliver(big: dict[str, Path], tmp_path: Path, signum: int) -> None:
    argv = ["deliver", str(big["chunks"]), "--web-root", str(tmp_path)]
    _stopped(argv, _started(tmp_path, f".{PROJECT}.deliver.almaqa2-staging-*"), signum)
    assert os.listdir(tmp_path) == []
    assert main(argv) == 0


@pytest.mark.parametrize("signum", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_download(
    slow_site: str,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    signum: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "raw"
    argv = ["download", slow_site, "--out", str(out)]
    _stopped(argv, _started(tmp_path, "raw/*.part"), signum)
    kept = _listing(out)
    assert [n for n in kept if n != "md5sums.txt"] and all(
        n.endswith(".part") for n in kept if n != "md5sums.txt"
    ), kept  # the resume point, and nothing else
    monkeypatch.setattr(SlowHandler, "pause", 0.0)  # the rerun need not wait
    assert main(argv) == 0
    assert not list(out.glob("*.part"))


def test_a_helper_is_forked_without_an_import() -> None:
    """A Ctrl-C that lands in an import (in its lock's clean-up) is printed and ignored by
    Python: forking a helper, which commands do once their work is under way, must import
    nothing."""
    code = (
        "import sys; from almaqa2 import forked; before = set(sys.modules);"
        "helper = forked.Helper(lambda pipe: pipe.send(1)); forked.receive(helper.pipe);"
        "helper.stop(); print(sorted(set(sys.modules) - before))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "[]\n", done.stdout + done.stderr


def test_a_signal_held_back_is_handled_after_the_block_whichever_thread_it_reached() -> None:
    """With another thread running (a hashing thread, say), a signal sent during a
    ``deferred`` block is handled once the block is left, not inside it: a block that
    only masked the signals in the main thread would see it handled there all the same."""
    code = (
        "import os, signal, threading, time; from almaqa2 import signals\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "threading.Thread(target=time.sleep, args=(2,), daemon=True).start()\n"
        "inside = False\n"
        "try:\n"
        "    with signals.deferred():\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(0.2)\n"
        "        inside = True\n"
        "    time.sleep(0.2)\n"
        "except KeyboardInterrupt:\n"
        "    print('after' if inside else 'inside')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout == "after\n", done.stdout + done.stderr
