"""Issue 20: ``qa2 package`` in fake mode forks the helper that reads the README's EB facts
as it starts (``launch``), before the command line is imported: it imports python-casacore
on the core this process leaves idle meanwhile, and the packager takes it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from almaqa2 import cmdline, launch
from almaqa2.package import facts

from conftest import QA2, Case

TAKEN = "the helper forked ahead to import casacore.tables, almaqa2.package.facts is taken"


@pytest.mark.parametrize(
    ("argv", "told"),
    [
        (["package", "a", "b", "--readme", "r"], ("package", "fake")),
        (["-v", "package", "a", "b", "--mode", "fake"], ("package", "fake")),
        (["package", "a", "b", "--mode=copy", "-q"], ("package", "copy")),
        (["package", "--mode", "hard", "a", "b"], ("package", "hard")),
        (["--log-file", "package", "verify", "x"], ("verify", "fake")),
        (["a", "--debug", "--log-file=l"], ("a", "fake")),
        (["package", "a", "--", "--mode", "copy"], ("package", "fake")),
        (["--version"], ("", "fake")),
    ],
)
def test_the_command_and_its_mode_are_told_from_the_line(
    argv: list[str], told: tuple[str, str]
) -> None:
    assert cmdline.told(cmdline.hoisted(argv)) == told


def test_the_helper_forked_ahead_imports_what_the_packager_asks_for() -> None:
    """Else the packager forks its own and the one forked ahead idles."""
    assert launch.FAKE_FACTS == facts.SPARE


def test_a_fake_package_reads_its_ebs_in_the_helper_forked_as_it_started(
    case229: Case, tmp_path: Path
) -> None:
    argv, _ = case229.commands("fake")
    log = tmp_path / "fake.log"
    done = subprocess.run([*QA2, "--log-file", str(log), *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert log.read_text().count(TAKEN) == 1, log.read_text()
    text = next(case229.packpath.rglob("README")).read_text()
    assert "uid___A002_X3dc0e7_X528" in text and "not described" not in text
    assert "Observed:" in text  # the EBs' facts, read from their MSes there


@pytest.mark.parametrize(
    ("argv", "code"), [(["package", "--help"], 0), (["package", "a", "b", "--no-such"], 2)]
)
def test_a_package_command_that_ends_before_taking_its_helper_ends_with_it(
    argv: list[str], code: int, tmp_path: Path
) -> None:
    """The helper is forked before the line is read: a command that ends before the
    packager takes it (its help, a mistyped option) must still end, and its helper too.
    The helper ignores SIGTERM, with which multiprocessing's exit hook ends it before
    waiting for it: both waited forever (and ``run`` waits for the helper's end of the
    output pipes)."""
    done = subprocess.run([*QA2, *argv], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == code, done.stderr


def test_a_dry_run_of_a_fake_package_ends_though_nothing_takes_its_helper(
    case229: Case,
) -> None:
    argv, _ = case229.commands("fake")
    done = subprocess.run([*QA2, *argv, "--dry-run"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "dry run: nothing was written" in done.stdout
    assert not case229.packpath.exists()
