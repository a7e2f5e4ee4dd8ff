"""Issue 20: a ``qa2`` process keeps the memory it frees (``heap``), and so do the helpers
it forks: batches of small files read into new ``bytes`` and freed, one after another,
no longer take every page of the next batch from the kernel again (a page fault each)."""

from __future__ import annotations

import subprocess
import sys

from conftest import QA2

BATCHES = """
import os, resource

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(30):  # as the hashing of small files does: 256 files of 16 KB a batch
        batch = [os.urandom(16_000) for _ in range(256)]
        del batch
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

def report():
    here = faults()
    read, write = os.pipe()
    if not os.fork():  # a helper, forked as the packager forks its own
        os.write(write, str(faults()).encode())
        os._exit(0)
    os.wait()
    print(here, os.read(read, 100).decode())
"""


def _faults(prologue: str, argv: list[str]) -> tuple[int, int]:
    """Page faults of 30 batches freed one after another: here, and in a forked helper."""
    done = subprocess.run(
        [sys.executable, "-c", f"{BATCHES}\n{prologue}", *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    here, helper = done.stdout.split()[-2:]
    return int(here), int(helper)


def test_qa2_and_its_helpers_keep_the_memory_they_free() -> None:
    plain = _faults("report()", [])  # a process that does not start as qa2 does
    command = QA2[-1].replace("qa2()", "")  # the qa2 command, through its entry point
    assert "launch" in command, QA2
    hooked = f"import atexit\natexit.register(report)\n{command}\nqa2()"
    kept = _faults(hooked, ["--version"])
    assert plain[0] > 30 * 300, plain  # each batch of 4 MB faulted in anew (in part)
    assert kept[0] < plain[0] / 5 and kept[1] < plain[0] / 5, (kept, plain)
