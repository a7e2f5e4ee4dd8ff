"""Running a batch on Dask distributed: a ``LocalCluster`` of this machine's cores, or the
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


@dataclass(frozen=True)
class Where:
    """Where the tasks run: a scheduler's address or scheduler file, else a LocalCluster
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
            **{status: self.count(status) for status in ("done", "skipped", "failed")},
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
        client, cluster = _connect(where, stack)
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


def _lost(job: Job, steps: tuple[str, ...], exc: BaseException) -> Record:
    why = reason(exc)
    if type(exc).__name__ == "KilledWorker":
        why = "the workers running it died, one after another; see their logs"
    return {
        "name": job.name,
        "steps": list(steps),
        "packpath": str(job.packpath),
        "status": "failed",
        "error": f"{why} ({type(exc).__name__}); rerun the batch to try it again.",
    }


def _connect(where: Where, stack: contextlib.ExitStack) -> tuple[Any, str]:
    """A client of the cluster ``where`` names, closed with ``stack``; and what it is."""
    try:
        from distributed import Client, LocalCluster
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
        workers = len(client.scheduler_info().get("workers", {}))
        return client, f"cluster: scheduler {client.scheduler.address} ({workers} workers now)"
    count = where.workers or os.cpu_count() or 1
    cluster = LocalCluster(
        n_workers=count,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port (None does not turn it off: distributed#8136)
        silence_logs=logging.ERROR,
    )
    stack.callback(cluster.close)
    client = Client(cluster)
    stack.callback(client.close)
    return client, f"cluster: this machine, {count} worker process(es) of one thread"


def _has_dashboard() -> bool:
    """Dask's dashboard needs bokeh, which almaqa2 does not install."""
    return importlib.util.find_spec("bokeh") is not None


def _dashboard(client: Any) -> str | None:
    return str(client.dashboard_link) if _has_dashboard() else None
