"""``qa2 batch`` on Dask distributed, for real: a cluster of this machine's worker
processes (``qa2 batch`` starts them), and a separate ``dask scheduler`` with two ``dask
worker`` processes on 127.0.0.1; a worker of each SIGKILLed in the middle of a MOUS."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from almaqa2.batch import ledger
from almaqa2.batch.plan import discover
from almaqa2.cli import main
from test_stage import PROJECT as RUN_PROJECT
from test_stage import build_run

from conftest import QA2, make_case, wait_for

GOOD = ("allegro", "archive2017", "flat", "nrao", "project229", "tp")


def _table(case_name: str, root: Path) -> dict[str, Any]:
    """A [[mous]] table of the acceptance case, with the options its command line gives."""
    case = make_case(case_name, root / case_name)
    argv, _ = case.commands("copy")
    table: dict[str, Any] = {"origpath": str(case.origpath), "project": case.packpath.name}
    options = argv[3:]
    while options:
        key = options.pop(0).removeprefix("--")
        if options and not options[0].startswith("--"):
            table[key] = options.pop(0)
        else:
            table[key] = True
    table["readme"] = str(case.readme)
    return table


@pytest.fixture(scope="module")
def reductions(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict[str, Any]]]:
    """Eight reductions of every layout (six manual, a pipeline run to stage) and a broken
    one: [(kind, table)], built once (the batches only read them)."""
    root = tmp_path_factory.mktemp("reductions")
    tables = [("mous", _table(name, root)) for name in GOOD]
    run = build_run(root / "pipeline")
    tables.append(("run", {"origpath": str(run), "project": RUN_PROJECT}))
    broken = root / "broken" / "IRAS_nothing"
    broken.mkdir(parents=True)
    (broken / "notes.txt").write_text("the reducer's notes, and no EB\n")
    tables.append(("mous", {"origpath": str(broken), "project": "2013.1.00999.S",
                            "readme": tables[0][1]["readme"]}))  # fmt: skip
    return tables


def _write_plan(path: Path, tables: list[tuple[str, dict[str, Any]]], out: Path) -> Path:
    lines = ["[defaults]", f"out = {json.dumps(str(out))}", 'mode = "copy"', 'max-size = "64K"']
    for kind, table in tables:
        lines += ["", f"[[{kind}]]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n")
    out.mkdir(exist_ok=True)
    return path


def _batch(*args: str) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run([*QA2, "batch", *args, "--json"], capture_output=True, text=True)
    document = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, document, done.stderr


def _by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {record["name"]: record for record in document["mous"]}


def _staging_left(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*") if "almaqa2-staging" in p.name or ".part" in p.name]


def test_a_batch_on_a_local_cluster_fails_alone_skips_on_rerun_and_redoes_with_force(
    reductions: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    plan = _write_plan(tmp_path / "cycle.toml", reductions, tmp_path / "out")
    code, first, stderr = _batch(str(plan), "--workers", "2")
    assert code == 1, stderr
    assert "this machine, 2 worker process(es)" in stderr
    records = _by_name(first)
    assert (first["done"], first["skipped"], first["failed"]) == (7, 0, 1)
    broken = records["IRAS_nothing"]
    assert broken["status"] == "failed" and "no execution block found" in broken["error"]
    assert str(reductions[-1][1]["origpath"]) in broken["error"]
    assert not (tmp_path / "out" / "IRAS_nothing").exists()  # nothing made for it stays
    done = [r for r in records.values() if r["status"] == "done"]
    workers = {r["worker"] for r in done}
    assert len(workers) == 2, workers  # both worker processes took MOUSes
    for record in done:
        assert main(["verify", record["packpath"]]) == 0, record
    markers = {r["name"]: (Path(r["packpath"]) / ".almaqa2.json").stat().st_ino for r in done}

    code, again, _ = _batch(str(plan), "--workers", "2")
    assert code == 1 and (again["done"], again["skipped"], again["failed"]) == (0, 7, 1)
    for name, inode in markers.items():  # skipped: nothing was rewritten
        assert (Path(records[name]["packpath"]) / ".almaqa2.json").stat().st_ino == inode

    code, forced, _ = _batch(str(plan), "--workers", "2", "--force")
    assert code == 1 and (forced["done"], forced["skipped"], forced["failed"]) == (7, 0, 1)
    for name, inode in markers.items():
        assert (Path(records[name]["packpath"]) / ".almaqa2.json").stat().st_ino != inode
    written = ledger.read(plan.with_name("cycle.ledger.jsonl"))
    assert {n: r["status"] for n, r in written.items()} == {
        n: r["status"] for n, r in _by_name(forced).items()
    }
    assert _staging_left(tmp_path / "out") == []


def test_changed_inputs_are_packaged_again(
    reductions: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    """The ledger's fingerprint covers the README header: edit it and that MOUS is redone."""
    readme = tmp_path / "README.header.txt"
    readme.write_text(Path(reductions[0][1]["readme"]).read_text())
    tables = [(kind, {**table, "readme": str(readme)}) for kind, table in reductions[2:4]]
    plan = _write_plan(tmp_path / "two.toml", tables, tmp_path / "out")
    assert _batch(str(plan), "--workers", "1")[0] == 0
    readme.write_text(readme.read_text() + "\nA note for the PI.\n")
    code, again, _ = _batch(str(plan), "--workers", "1")
    assert code == 0 and (again["done"], again["skipped"]) == (2, 0)


def test_steps_leave_chunks_and_md5s_and_the_ledger_lists_them(
    reductions: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    plan = _write_plan(tmp_path / "split.toml", reductions[:7], tmp_path / "out")
    code, document, stderr = _batch(
        str(plan), "--workers", "2", "--steps", "package,tarsplit,verify"
    )
    assert code == 0 and document["done"] == 7, stderr
    written = ledger.read(tmp_path / "split.ledger.jsonl")
    assert len(written) == 7
    for name, record in written.items():
        chunks = record["chunks"]
        folder = Path(record["packpath"]).parent
        on_disk = sorted(p.name for p in folder.glob("*.tar") if "_of_" in p.name)
        assert [c["name"] for c in chunks] == on_disk and on_disk, name
        for chunk in chunks:
            md5 = (folder / f"{chunk['name']}.md5sum").read_text().split()[0]
            assert md5 == chunk["md5"] and (folder / chunk["name"]).stat().st_size == chunk["size"]
        assert Path(record["md5sums"]).is_file()
        assert record["verified"] > len(chunks)  # every chunk and every file in them
        checked = subprocess.run(["md5sum", "-c", Path(record["md5sums"]).name], cwd=folder)
        assert checked.returncode == 0
    assert max(len(r["chunks"]) for r in written.values()) >= 2  # max-size took effect
    # a damaged chunk: the rerun's verify step reads every byte again and fails that MOUS
    victim = next(iter(written.values()))
    chunk = Path(victim["packpath"]).parent / victim["chunks"][0]["name"]
    data = bytearray(chunk.read_bytes())
    data[600] ^= 0xFF
    chunk.write_bytes(bytes(data))
    code, again, _ = _batch(str(plan), "--workers", "2", "--steps", "package,tarsplit,verify")
    failed = [r for r in again["mous"] if r["status"] == "failed"]
    assert code == 1 and [r["name"] for r in failed] == [victim["name"]]
    assert "problem" in failed[0]["error"]


@pytest.fixture
def cluster(tmp_path: Path) -> Any:
    """A scheduler and two workers, each its own process on 127.0.0.1, stopped afterwards.
    The workers' files are kept in ``tmp_path/dask``: a killed worker leaves its own."""
    scheduler_file = tmp_path / "scheduler.json"
    common = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]
    scratch = {**os.environ, "DASK_TEMPORARY_DIRECTORY": str(tmp_path / "dask")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", *common, "--port", "0",
             "--scheduler-file", str(scheduler_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=scratch,
        )
    ]  # fmt: skip
    try:
        wait_for(scheduler_file.is_file)
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "distributed.cli.dask_worker", "--no-nanny",
                     "--nthreads", "1", *common, "--scheduler-file", str(scheduler_file)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=scratch,
                )
            )  # fmt: skip
        yield scheduler_file, processes[1:]
    finally:
        for process in reversed(processes):  # the workers first: one stopped with its
            process.terminate()  # scheduler waits for it to come back
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _heavy(
    reductions: list[tuple[str, dict[str, Any]]], tmp_path: Path, count: int = 7
) -> list[tuple[str, dict[str, Any]]]:
    """The first ``count`` good reductions, copied, each MOUS with a 64 MB calibration
    table: slow enough to be caught at work."""
    tables = []
    for n, (kind, table) in enumerate(reductions[:count]):
        origpath = Path(table["origpath"])
        if kind == "mous" and origpath.is_dir():
            copy = tmp_path / "heavy" / f"{n}"  # with what is beside it (Allegro)
            copy.mkdir(parents=True)
            subprocess.run(["cp", "-a", str(origpath.parent), str(copy)], check=True)
            heavy = copy / origpath.parent.name / origpath.name
            table = {**table, "origpath": str(heavy)}
            ebs = sorted(p for p in heavy.rglob("uid___*.ms.split.cal") if p.is_dir())
            big = ebs[0].with_name(ebs[0].name + ".bandpass") if ebs else heavy / "big.cal"
            big.mkdir()
            (big / "table.dat").write_bytes(b"table")
            (big / "table.f0").write_bytes(os.urandom(64 << 20))
        tables.append((kind, table))
    return tables


def test_a_separate_cluster_survives_a_worker_killed_in_the_middle_of_a_mous(
    reductions: list[tuple[str, dict[str, Any]]], cluster: Any, tmp_path: Path
) -> None:
    from distributed import Client

    scheduler_file, workers = cluster
    plan = _write_plan(tmp_path / "cluster.toml", _heavy(reductions, tmp_path), tmp_path / "out")

    with Client(scheduler_file=str(scheduler_file), timeout="30s") as client:
        wait_for(lambda: len(client.scheduler_info()["workers"]) == 2)
        pids = client.run(os.getpid)  # {worker address: pid}
        batch = subprocess.Popen(
            [*QA2, "batch", str(plan), "--scheduler-file", str(scheduler_file), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        caught: list[str] = []

        def busy() -> bool:  # a worker with a MOUS in hand and its staging already made
            for address, keys in client.processing().items():
                if keys and any((tmp_path / "out").rglob(".*almaqa2-staging-*")):
                    caught.extend(keys)
                    os.kill(pids[address], signal.SIGKILL)
                    return True
            return False

        wait_for(busy)
        stdout, stderr = batch.communicate(timeout=300)
    assert batch.returncode == 0, stderr
    document = json.loads(stdout)
    assert "cluster: scheduler tcp://127.0.0.1:" in stderr
    assert (document["done"], document["failed"]) == (7, 0)
    assert sum(p.poll() is None for p in workers) == 1  # one was killed, the other did the rest
    assert any((tmp_path / "dask").glob("*/worker-*"))  # the killed one's files, not in /tmp
    lines = [
        json.loads(line) for line in plan.with_name("cluster.ledger.jsonl").read_text().splitlines()
    ]
    assert sorted(r["name"] for r in lines) == sorted(r["name"] for r in document["mous"])
    assert caught and all(r["status"] == "done" for r in lines)  # each MOUS once, done
    assert _staging_left(tmp_path / "out") == []
    for record in lines:
        assert main(["verify", record["packpath"]]) == 0


def test_a_batch_whose_workers_on_this_machine_all_die_ends_and_its_rerun_redoes_it(
    reductions: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    """No nanny restarts a worker of this machine (its queues would be names in /dev/shm):
    once the only one is killed in the middle of a MOUS, the waiting tasks fail after a
    few seconds, rather than wait for ever; the rerun does them all."""
    import psutil

    plan = _write_plan(tmp_path / "alone.toml", _heavy(reductions, tmp_path, 2), tmp_path / "out")
    batch = subprocess.Popen(
        [*QA2, "batch", str(plan), "--workers", "1", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def spec(process: psutil.Process) -> bool:
        with contextlib.suppress(psutil.Error):  # a child that has just ended (a zombie)
            return "spec" in process.cmdline()
        return False

    def busy() -> bool:  # the worker with a MOUS in hand and its staging already made
        workers = [p for p in psutil.Process(batch.pid).children() if spec(p)]
        if workers and any((tmp_path / "out").rglob(".*almaqa2-staging-*")):
            workers[0].kill()
            return True
        return False

    try:
        wait_for(busy)
    except BaseException:  # not left running into the next test
        batch.kill()
        batch.communicate()
        raise
    stdout, stderr = batch.communicate(timeout=120)
    document = json.loads(stdout)
    assert batch.returncode == 1 and (document["done"], document["failed"]) == (0, 2), stderr
    for record in document["mous"]:
        assert "no worker was left to run it for 5s" in record["error"], record
    code, again, stderr = _batch(str(plan), "--workers", "1")
    assert code == 0 and (again["done"], again["failed"]) == (2, 0), stderr
    assert _staging_left(tmp_path / "out") == []
    for record in again["mous"]:
        assert main(["verify", record["packpath"]]) == 0


def test_workers_that_do_not_start_in_time_are_one_sentence_and_leave_nothing(
    reductions: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    """The wait for this machine's workers cut to 10 ms, which no worker process meets."""
    import psutil

    plan = _write_plan(tmp_path / "slow.toml", reductions[2:3], tmp_path / "out")
    script = (
        "import sys; from almaqa2.batch import runner; runner._CONNECT_TIMEOUT = '10ms'; "
        "from almaqa2.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    batch = subprocess.Popen(
        [sys.executable, "-c", script, "batch", str(plan), "--workers", "2"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    workers: list[psutil.Process] = []
    while batch.poll() is None:  # the worker processes it starts, to see them end
        with contextlib.suppress(psutil.Error):
            workers += [p for p in psutil.Process(batch.pid).children() if p not in workers]
        time.sleep(0.01)
    said = " ".join(batch.communicate()[1].split())
    assert batch.returncode == 2 and said.startswith("error: the 2 worker processes did not all")
    assert "Traceback" not in said and said.count("error:") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "slow.ledger.jsonl", "slow.toml"]
    assert workers and psutil.wait_procs(workers, timeout=20)[1] == []  # all ended
    assert list((tmp_path / "out").iterdir()) == []


def test_a_bad_plan_is_one_sentence_naming_table_and_key_and_starts_nothing(
    reductions: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    kind, table = reductions[2]
    cases = {
        "colour = 1": "[[mous]] #1: unknown key 'colour'",
        'mode = "quick"': "[[mous]] #1: unknown mode 'quick'",
        "max-size = true": "[[mous]] #1: 'max-size' must be a size",
        'max-size = "1K"': "[[mous]] #1: 'max-size'",
        'readme = "FILL-IN"': "[[mous]] #1: 'readme' is still FILL-IN",
    }
    for extra, said in cases.items():
        key = extra.split(" = ")[0]
        given = {k: v for k, v in table.items() if k != key}
        plan = _write_plan(tmp_path / "bad.toml", [(kind, given)], tmp_path / "out")
        plan.write_text(plan.read_text() + extra + "\n")
        code, _, stderr = _batch(str(plan))
        assert code == 2 and said in stderr and "Traceback" not in stderr, (extra, stderr)
        assert len(stderr.strip().splitlines()) <= 3, stderr  # one sentence, wrapped
        assert not (tmp_path / "bad.ledger.jsonl").exists()
    plan.write_text("[[mous]]\norigpath = 'x'\n[[mous\n")
    code, _, stderr = _batch(str(plan))
    assert code == 2 and "is not TOML" in stderr
    plan.write_text("[defaults]\nout = 'out'\nreadme = 'r'\nproject = '2013.1.00123.S'\n"
                    + "[[mous]]\norigpath = 'a'\n" * 2)  # fmt: skip
    code, _, stderr = _batch(str(plan))
    assert code == 2 and "name 'a'" in stderr and "two tables have it" in stderr
    plan.write_text("[defaults]\nreadme = 'r'\n" + "".join(
        f"[[mous]]\norigpath = '{n}'\npackpath = 'out/2013.1.00123.S'\n" for n in "ab"
    ))  # fmt: skip
    code, _, stderr = _batch(str(plan))
    one_line = " ".join(stderr.split())
    assert code == 2 and "[[mous]] a: packpath " in one_line and "is not its own" in one_line
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("key", "into", "said"),
    [
        ("packpath", "its reduction", "b: its packpath {target} overlaps the reduction of"),
        ("chunks", "its reduction", "b: its chunks {target} overlaps the reduction of"),
        ("chunks", "its package", "b: its chunks {target} overlaps the package of [[mous]] a,"),
        ("packpath", "its package's folder", "a: its packpath {packpath} overlaps the package"),
    ],
)
def test_a_plan_writing_into_another_table_s_reduction_or_package_starts_nothing(
    reductions: list[tuple[str, dict[str, Any]]], tmp_path: Path, key: str, into: str, said: str
) -> None:
    """Each command checks only its own paths: a table whose package or chunks went into
    another table's reduction changed it, and chunks written into another's package made
    it fail its manifest (and travel inside its next split)."""
    kind, table = reductions[2]
    first = {**table, "name": "a"}
    packpath = tmp_path / "out" / "a" / str(table["project"])
    target = {
        "its reduction": Path(table["origpath"]) / "Combined" / "x",
        "its package": packpath / "sg_ouss_id",
        "its package's folder": packpath.parent,
    }[into]
    second = {k: v for k, v in table.items() if k != "project"} | {"name": "b", key: str(target)}
    if key == "chunks":
        second["project"] = table["project"]
    plan = _write_plan(tmp_path / "overlap.toml", [(kind, first), (kind, second)], tmp_path / "out")
    said = said.format(target=target, packpath=packpath)
    for dry_run in ([], ["--dry-run"]):
        code, _, stderr = _batch(str(plan), "--steps", "package,tarsplit", *dry_run)
        one_line = " ".join(stderr.split())
        assert code == 2 and f"error: [[mous]] {said}" in one_line, stderr
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "overlap.ledger.jsonl").exists()


@pytest.mark.parametrize(
    ("mode", "steps", "said"),
    [
        (None, "package,tarsplit,verify", "its mode is fake, whose package holds empty"
         " placeholders and is not split or verified"),
        ("ticket", "verify", "its mode is ticket, whose package holds empty placeholders and"
         " is not verified"),
    ],
)  # fmt: skip
def test_a_plan_asking_to_split_or_verify_placeholders_starts_nothing(
    reductions: list[tuple[str, dict[str, Any]]],
    tmp_path: Path,
    mode: str | None,
    steps: str,
    said: str,
) -> None:
    """fake is a [[mous]]'s default mode: every MOUS was packaged, then failed its split."""
    kind, table = reductions[2]
    plan = _write_plan(tmp_path / "fake.toml", [(kind, table)], tmp_path / "out")
    text = plan.read_text().replace('mode = "copy"', f'mode = "{mode}"' if mode else "")
    plan.write_text(text)
    for dry_run in ([], ["--dry-run"]):
        code, _, stderr = _batch(str(plan), "--steps", steps, *dry_run)
        one_line = " ".join(stderr.split())
        assert code == 2 and "error: [[mous]] " in one_line and f": {said}" in one_line, stderr
        assert "or leave" in one_line and "out of --steps" in one_line
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "fake.ledger.jsonl").exists()
    code, _, stderr = _batch(str(plan), "--steps", "package", "--dry-run")
    assert code == 0, stderr


def test_a_plan_whose_out_is_not_there_starts_nothing(
    reductions: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    """Every MOUS failed, each on its own: "the directory to hold the package not found:
    <out>/<name>; create it first" (a run makes <out>/<name>, not <out>)."""
    plan = _write_plan(tmp_path / "typo.toml", reductions[:2], tmp_path / "out")
    (tmp_path / "out").rmdir()
    for steps in ("package", "package,tarsplit"):
        for dry_run in ([], ["--dry-run"]):
            code, _, stderr = _batch(str(plan), "--steps", steps, *dry_run)
            said = " ".join(stderr.split())
            assert code == 2 and re.fullmatch(
                rf"error: \[\[mous\]\] (\S+): {re.escape(str(tmp_path))}/out, where it writes"
                rf" \1/, is not a directory: {re.escape(str(plan))}; create it, or correct the"
                r" PLAN's out \(or packpath, chunks\)\.",
                said,
            ), said
    assert os.listdir(tmp_path) == ["typo.toml"]


def test_init_lists_what_the_layouts_recognise(
    reductions: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    top = Path(reductions[0][1]["origpath"]).parents[3]  # holds every case's directory
    found = {(f.kind, f.path) for f in discover(top)}
    expected = {(kind, Path(t["origpath"])) for kind, t in reductions[:-1]}
    expected.discard(("mous", Path(reductions[2][1]["origpath"])))  # flat: its parent is found
    assert expected <= found, found
    assert not any(path.name == "IRAS_nothing" for _, path in found)
    plan = tmp_path / "init.toml"
    assert main(["batch", str(plan), "--init", str(top)]) == 0
    text = plan.read_text()
    assert text.count("[[run]]") == 1 and text.count("[[mous]]") == len(found) - 1
    assert 'project = "2017.1.01185.S"' in text  # read from the directory's name
    code, _, stderr = _batch(str(plan))
    assert code == 2 and "still FILL-IN" in stderr  # to be completed before it runs
    assert main(["batch", str(plan), "--init", str(top)]) == 2  # never over a PLAN
    assert plan.read_text() == text


def test_a_record_cut_short_is_ignored_and_the_next_starts_on_its_own_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "b.ledger.jsonl"
    with ledger.Writer(path) as writer:
        writer.add({"name": "a", "status": "done"})
    with open(path, "a") as f:
        f.write('{"name": "a", "status": "fail')  # a crash in the middle of a write
    assert ledger.read(path) == {"a": {"name": "a", "status": "done"}}
    with ledger.Writer(path) as writer:
        writer.add({"name": "b", "status": "failed"})
    assert set(ledger.read(path)) == {"a", "b"}
    with open(path, "a") as f:  # edited by hand: not a record of ours (a KeyError it was)
        f.write('{"name": "c"}\n{"name": "a", "status": 1}\n["a"]\n')
    assert ledger.read(path) == {
        "a": {"name": "a", "status": "done"},
        "b": {"name": "b", "status": "failed"},
    }


def test_a_dry_run_lists_the_jobs_and_their_ledger_state_and_starts_nothing(
    reductions: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    plan = _write_plan(tmp_path / "dry.toml", reductions, tmp_path / "out")
    code, document, _ = _batch(str(plan), "--dry-run")
    assert code == 0 and len(document["jobs"]) == len(reductions)
    assert all(job["last"] is None for job in document["jobs"])
    assert list((tmp_path / "out").iterdir()) == [] and not Path(document["ledger"]).exists()
    with ledger.Writer(Path(document["ledger"])) as writer:
        writer.add({"name": document["jobs"][1]["name"], "status": "done"})
    code, document, _ = _batch(str(plan), "--dry-run", "--steps", "tarsplit,package")
    assert code == 0 and document["steps"] == ["package", "tarsplit"]
    assert [job["last"] is not None for job in document["jobs"]][:3] == [False, True, False]
    code, _, stderr = _batch(str(plan), "--dry-run", "--steps", "package,upload")
    assert code == 2 and "'package,upload' is not a list of steps" in stderr
