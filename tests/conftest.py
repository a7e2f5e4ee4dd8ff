"""Shared test helpers: build reductions from acceptance listings, run the CLI, hash trees."""

from __future__ import annotations

import hashlib
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from almaqa2.cli import main as cli_main
from almaqa2.package.legacy import QA_Packager
from almaqa2.testing import reductions as example

ACCEPTANCE = Path(__file__).parent / "acceptance"
CASES = sorted(p.name for p in ACCEPTANCE.iterdir() if (p / "input.txt").exists())
MODES = ("fake", "ticket", "copy", "hard")
QA2 = [sys.executable, "-c", "from almaqa2.launch import qa2; qa2()"]
"""``qa2`` as a process of its own, as a reducer runs it (add the arguments)."""


def run_limited(argv: list[str], file_size: int) -> subprocess.CompletedProcess[str]:
    """``qa2 argv`` as a process whose files may not grow past ``file_size`` bytes: its
    writes then fail with EFBIG, casacore's too, as on a disk full at any byte one
    chooses (a disk of the test's own, ``run_on_disk``, has at least 16 MB free when the
    split starts writing: it refuses less)."""

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    return subprocess.run(
        [*QA2, *argv], preexec_fn=limited, capture_output=True, text=True, timeout=120
    )


_NAMESPACE = ["unshare", "--user", "--map-root-user", "--mount"]
"""A mount namespace of the command's own, which any user may make (a user namespace)."""

_ON_DISK = """
options=$1 disk=$2 left=$3 filled=$4; shift 4
mount -t tmpfs -o "$options" almaqa2-test "$disk" || exit 99
[ -z "$filled" ] || cat /dev/zero 2>/dev/null > "$disk/$filled"
"$@"; code=$?
find "$disk" -mindepth 1 -printf '%P\\n' > "$left"
exit $code
"""


def run_on_disk(
    argv: list[str],
    disk: Path,
    options: str,
    filled: str = "",
    env: dict[str, str] | None = None,
    left: Path | None = None,
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``qa2 argv`` with the empty directory ``disk`` a file system of its own: a tmpfs
    mounted with ``options`` (``size=``, ``nr_inodes=``, ``ro``) in a mount namespace of
    the command's own (``unshare``: no other process sees it, and it is gone with the
    command), ``filled`` to the brim first by a file of that name if given; ``env``: more
    environment variables.  A full or read-only disk as real as the reducer's.  Returns
    how the command ended and the paths the disk held after it (relative, sorted), listed
    into ``left`` (default: beside ``disk``)."""
    left = left or disk.parent / f"{disk.name}.left"
    script = ["sh", "-c", _ON_DISK, "sh", options, str(disk), str(left), filled]
    done = subprocess.run(
        [*_NAMESPACE, *script, *QA2, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    if done.returncode == 99 or not left.exists():
        raise RuntimeError(f"the tests mount a tmpfs in a namespace of their own: {done.stderr}")
    return done, sorted(left.read_text().splitlines())


# Fail loudly, never skip, when a real client the tests rely on is missing.
def refused_on_disk(
    argv: list[str], disk: Path, options: str, **kwargs: Any
) -> tuple[str, list[str]]:
    """``run_on_disk`` of a command the disk must stop: exit 2, no traceback.  Returns
    its sentence, on one line, and what the disk holds after it."""
    done, left = run_on_disk(argv, disk, options, **kwargs)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    return " ".join(done.stderr.split()), left


def run_read_only(argv: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    """``qa2 argv`` with ``folder`` mounted read-only, as it is, in a mount namespace of
    the command's own (``unshare``): a reduction or a web root on a disk mounted
    read-only, as real as the reducer's."""
    read_only = 'mount --bind -o ro "$1" "$1" || exit 99; shift; exec "$@"'
    done = subprocess.run(
        [*_NAMESPACE, "sh", "-c", read_only, "sh", str(folder), *QA2, *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode == 99:
        raise RuntimeError(f"the tests mount a folder in a namespace of their own: {done.stderr}")
    return done


_TOOLS = ("tar", "unzip", "md5sum", "gzip", "chromium", "chromedriver", "strace", "unshare")
for _tool in (*_TOOLS, "mount"):
    if shutil.which(_tool) is None:
        raise RuntimeError(f"the tests need '{_tool}' on PATH: run 'make test', which installs it")


@dataclass
class Case:
    name: str
    dir: Path
    origpath: Path
    readme: Path
    packpath: Path

    @property
    def expected(self) -> list[str]:
        return (self.dir / "expected.txt").read_text().split()

    @property
    def expected_beside(self) -> list[str]:
        return (self.dir / "expected_beside.txt").read_text().split()

    def commands(self, mode: str) -> tuple[list[str], str]:
        """The case's CLI argv and legacy call, in ``mode``."""
        cli_line, legacy_line = (self.dir / "command.txt").read_text().strip().splitlines()
        fill = {"origpath": self.origpath, "readme": self.readme, "packpath": self.packpath}
        argv = shlex.split(cli_line.format(**fill))[1:]
        argv[argv.index("--mode") + 1] = mode
        legacy = legacy_line.format(**fill).replace("mode='hard'", f"mode='{mode}'")
        return argv, legacy

    def run_cli(self, mode: str, *extra: str) -> int:
        argv, _ = self.commands(mode)
        return cli_main([*argv, *extra])

    def run_legacy(self, mode: str) -> None:
        _, call = self.commands(mode)
        eval(call, {"QA_Packager": QA_Packager})


def make_case(name: str, tmp_path: Path) -> Case:
    case_dir = ACCEPTANCE / name
    origin = case_dir / "origpath.txt"
    rel = origin.read_text().strip() if origin.exists() else "IRC10216_setup3_b6_run_x2"
    project = (case_dir / "expected.txt").read_text().split()[0].rstrip("/")
    origpath = example.build(
        (case_dir / "input.txt").read_text().splitlines(), tmp_path / "reduction" / rel, project
    )
    readme = tmp_path / "README.header.txt"
    readme.write_text(example.HEADER)
    out = tmp_path / "out"
    out.mkdir()
    return Case(name, case_dir, origpath, readme, out / project)


def filled_only_in(ms: Path, column: str, spws: tuple[int, ...] = ()) -> None:
    """Make ``column`` of ``ms`` a new column holding its values only in the rows of
    ``spws`` (none by default): the others' cells undefined, as a column added and never
    filled, or a calibration applied to some spws, leaves CORRECTED_DATA."""
    from casacore import tables

    with (
        tables.table(str(ms), ack=False) as table,
        tables.table(str(ms / "DATA_DESCRIPTION"), ack=False) as dds,
    ):
        dd_spw = dds.getcol("SPECTRAL_WINDOW_ID")
        rows = [r for r, dd in enumerate(table.getcol("DATA_DESC_ID")) if dd_spw[dd] in spws]
        kind = table.getcell(column, 0).dtype
        values = {row: table.getcell(column, row) for row in rows}
    with tables.table(str(ms), readonly=False, ack=False) as table:
        table.removecols([column])
        valuetype = "boolean" if kind.kind == "b" else "complex"
        desc = tables.makearrcoldesc(column, kind.type(0), ndim=2, valuetype=valuetype)
        dminfo = {"TYPE": "TiledShapeStMan", "NAME": f"Tiled{column}", "SPEC": {}}
        table.addcols(tables.maketabdesc([desc]), dminfo=dminfo)
        for row, value in values.items():
            table.putcell(column, row, value)


def wait_for(condition: Callable[[], object], timeout: float = 60) -> None:
    """Until ``condition()`` is true, for ``timeout`` seconds at most (a loaded machine is
    slow), then AssertionError."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {condition}")
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def _no_site_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads the config file or QA2_* variables of the machine it runs on."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config-home")))
    for name in [n for n in os.environ if n.startswith("QA2_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def case229(tmp_path: Path) -> Case:
    return make_case("project229", tmp_path)


@pytest.fixture(scope="session")
def nrao_split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The nrao case packaged in copy mode (``out/2013.1.00123.S``) and split into chunks of
    at most 20 KB (``chunks/``), made once: tests copy what they damage."""
    root = tmp_path_factory.mktemp("split")
    case = make_case("nrao", root)
    assert case.run_cli("copy") == 0
    (root / "chunks").mkdir()
    argv = ["tarsplit", str(case.packpath), "--max-size", "20K", "--out", str(root / "chunks")]
    assert cli_main(argv) == 0
    return root


@pytest.fixture
def chunks(nrao_split: Path, tmp_path: Path) -> Path:
    """A copy of the nrao case's chunks, to damage at will."""
    return Path(shutil.copytree(nrao_split / "chunks", tmp_path / "chunks"))


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty directory to extract into."""
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


def listing(packpath: Path) -> list[str]:
    """The package as acceptance cases write it: paths from packpath's parent, sorted,
    directories with '/', not descending into table and plots directories."""
    found = []
    for dirpath, dirnames, filenames in os.walk(packpath):
        here = Path(dirpath)
        rel = here.relative_to(packpath.parent).as_posix()
        found.append(rel + "/")
        unit_of_plots = here.name.endswith(".plots") and not here.name.endswith(
            ".calibration.plots"
        )
        if (here / "table.dat").exists() or unit_of_plots:
            dirnames.clear()
            continue
        found += [f"{rel}/{f}" for f in filenames]
    return sorted(found)


def md5sum_check(packpath: Path) -> subprocess.CompletedProcess:
    """GNU md5sum -c on the package's manifest, run from packpath's parent as a PI would."""
    return subprocess.run(
        ["md5sum", "-c", "--strict", f"{packpath.name}/manifest.md5"],
        cwd=packpath.parent,
        capture_output=True,
        text=True,
    )


def tree_state(root: Path) -> dict[str, tuple]:
    """Everything observable about a tree: content hash, size, mode, mtime, link target."""
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                state[rel] = ("dir", st.st_mode, st.st_mtime_ns)
            else:
                digest = hashlib.md5(path.read_bytes()).hexdigest()
                state[rel] = ("file", digest, st.st_size, st.st_mode, st.st_mtime_ns)
    return state
