"""Running a batch on Dask distributed: a cluster of this machine's cores (``_local``), or the
cluster of a running scheduler (started by hand, by ``dask-jobqueue`` on SLURM/PBS/HTCondor,
or by ``dask-mpi``).  Each MOUS is one task (``task.run``) on a worker, which must see the
reductions and the output directories at the same paths as this process (a shared file
system); the results come back here and go into the ledger as they arrive.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from almaqa2.batch import ledger, task
from almaqa2.batch.ledger import Record
from almaqa2.batch.plan import BatchPlan, Job
from almaqa2.errors import InputError, reason
from almaqa2.package import lockfile
from almaqa2.package.package_dir import lock_path
from almaqa2.progress import Progress

_CONNECT_TIMEOUT = "30s"
_NO_WORKERS = "5s"  # a task's wait once every worker of this machine has died (none comes back)


@dataclass(frozen=True)
class Where:
    """Where the tasks run: a scheduler's address or scheduler file, else a cluster
    of ``workers`` processes (default: the cores), one thread each."""

    scheduler: str | None = None
    scheduler_file: Path | None = None
    workers: int | None = None


@dataclass(frozen=True)
class Outcome:
    plan: BatchPlan
    cluster: str
    records: tuple[Record, ...]  # in the PLAN's order
    seconds: float

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.records)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": str(self.plan.path),
            "ledger": str(self.plan.ledger),
            "cluster": self.cluster,
            "seconds": round(self.seconds, 3),
            **{status: self.count(status) for status in ledger.STATUSES},
            "bytes": sum(r.get("bytes", 0) for r in self.records if r["status"] == "done"),
            "mous": list(self.records),
        }


def run(
    plan: BatchPlan,
    steps: tuple[str, ...],
    where: Where,
    retries: int = 0,
    force: bool = False,
    said: Callable[[str], None] = print,
    progress: Progress | None = None,
) -> Outcome:
    """Do ``steps`` for every MOUS of ``plan`` on the cluster ``where`` names; each record
    goes into the ledger as its task ends.  One batch of a PLAN at a time (a lock)."""
    started = time.monotonic()
    previous = ledger.read(plan.ledger)
    records: dict[str, Record] = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(lockfile.hold(lock_path(plan.path), f"running {plan.path}"))
        writer = stack.enter_context(ledger.Writer(plan.ledger))
        client, cluster = _connect(where, _scratch(plan), stack)
        said(cluster)
        if (link := _dashboard(client)) is not None:
            said(f"dashboard: {link}")
        from distributed import as_completed  # (_connect checked it is there)

        batch = uuid.uuid4().hex[:8]
        futures = {
            client.submit(
                task.run, job, steps, previous.get(job.name), force,
                key=f"qa2-{job.name}-{batch}", retries=retries, pure=False,
            ): job
            for job in plan.jobs
        }  # fmt: skip
        for future in as_completed(futures):
            job = futures[future]
            try:
                record = future.result()
            except Exception as exc:  # retries used up, or the task lost too many workers
                record = _lost(job, steps, exc)
            writer.add(record)
            records[job.name] = record
            if progress:
                progress(len(records), len(futures), job.name)
    ordered = tuple(records[job.name] for job in plan.jobs)
    return Outcome(plan, cluster, ordered, time.monotonic() - started)


_LOST = {
    "KilledWorker": "the workers running it died, one after another; see their logs",
    "NoWorkerError": f"no worker was left to run it for {_NO_WORKERS}; see their logs",
}
"""What a task lost with its workers says, by Dask's exception (others: their own text)."""


def _lost(job: Job, steps: tuple[str, ...], exc: BaseException) -> Record:
    why = _LOST.get(type(exc).__name__) or reason(exc)
    return {
        "name": job.name,
        "steps": list(steps),
        "packpath": str(job.packpath),
        "status": "failed",
        "error": f"{why} ({type(exc).__name__}); rerun the batch to try it again.",
    }


def _connect(where: Where, scratch: Path, stack: contextlib.ExitStack) -> tuple[Any, str]:
    """A client of the cluster ``where`` names, closed with ``stack``; and what it is.
    ``scratch``: where a cluster of this machine keeps its files."""
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            "qa2 batch runs on Dask distributed, which is not installed",
            fix="pip install 'almaqa2[batch]'",
        ) from None

    if logging.getLogger().level > logging.DEBUG:  # Dask's own news only with -vv
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if where.scheduler or where.scheduler_file:
        given = where.scheduler or str(where.scheduler_file)
        try:
            if where.scheduler_file is not None:
                if not where.scheduler_file.is_file():
                    raise FileNotFoundError(f"no such file: {where.scheduler_file}")
                client = Client(scheduler_file=str(where.scheduler_file), timeout=_CONNECT_TIMEOUT)
            else:
                client = Client(where.scheduler, timeout=_CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise InputError(
                f"the Dask scheduler cannot be reached ({reason(exc)})",
                given,
                fix="start it (dask scheduler), or check the address or scheduler file",
            ) from None
        stack.callback(client.close)
        info = client.scheduler_info()
        workers = len(info.get("workers", {}))
        return client, f"cluster: scheduler {info['address']} ({workers} workers now)"
    count = where.workers or os.cpu_count() or 1
    said = f"cluster: this machine, {count} worker process(es) of one thread"
    return _local(count, scratch, stack), said


def _local(count: int, scratch: Path, stack: contextlib.ExitStack) -> Any:
    """A client of a cluster on this machine: its scheduler in this process, ``count``
    worker processes of one thread (``dask spec``), all writing their scratch files in
    ``scratch`` only, which is removed with ``stack``.

    Not ``LocalCluster``: its nannies talk to their workers through multiprocessing
    queues, named semaphores in /dev/shm, and keep their scratch files in $TMPDIR, both
    outside what a batch may write.  What a nanny gives, a worker restarted when it
    dies, is left to the scheduler: the task of a dead worker goes to another, and once
    none is left, every task waiting fails after ``_NO_WORKERS`` (the rerun redoes them)."""
    import dask
    from dask.utils import parse_timedelta
    from distributed import Client, Scheduler, SpecCluster
    from distributed.deploy.subprocess import SubprocessWorker

    shutil.rmtree(scratch, ignore_errors=True)  # a killed batch's (the PLAN is locked)
    scratch.mkdir()
    stack.callback(shutil.rmtree, scratch, ignore_errors=True)
    stack.enter_context(dask.config.set({
        "temporary-directory": str(scratch),  # the scheduler's
        "distributed.scheduler.no-workers-timeout": _NO_WORKERS,
    }))  # fmt: skip
    host = "127.0.0.1"
    worker = {
        "cls": SubprocessWorker,
        "options": {
            "worker_class": "distributed.Worker",
            "worker_kwargs": {"host": host, "nthreads": 1, "local_directory": str(scratch),
                              "silence_logs": logging.ERROR},
        },
    }  # fmt: skip
    cluster = SpecCluster(
        scheduler={"cls": Scheduler, "options": {"host": host, "port": 0,
                   "dashboard_address": ":0"}},  # (None does not turn it off: distributed#8136)
        workers=dict.fromkeys(range(count), worker),
        silence_logs=logging.ERROR,
        name="almaqa2",
    )  # fmt: skip
    stack.callback(cluster.close)
    client = Client(cluster)
    stack.callback(client.close)
    try:
        client.wait_for_workers(count, timeout=parse_timedelta(_CONNECT_TIMEOUT))
    except TimeoutError:
        raise InputError(
            f"the {count} worker processes did not all start within {_CONNECT_TIMEOUT}",
            fix="ask for fewer with --workers, or run with -vv to see what they said",
        ) from None
    return client


def _scratch(plan: BatchPlan) -> Path:
    """The directory beside the PLAN where a cluster of this machine keeps its files."""
    return plan.path.parent / f".{plan.path.name}.almaqa2-dask"


def _has_dashboard() -> bool:
    """Dask's dashboard needs bokeh, which almaqa2 does not install."""
    return importlib.util.find_spec("bokeh") is not None


def _dashboard(client: Any) -> str | None:
    return str(client.dashboard_link) if _has_dashboard() else None
