"""``qa2 split`` (seed 003's science split and targets, flags saved) against its floor and,
with ``--casa-python``, against CASA's own split of the same MS in the same run.

Builds an ALMA-like MS of ~1 GB (example_ms.ALMA: science spws of 2048 and 8 channels, the
WVR and channel-average spws, calibrators and a mosaic target) and prints, best of
``--repeat`` runs from the same slate (outputs removed, ``sync``), warm page cache:

    qa2 split     seconds, s/GB of the MS, peak RSS            target <= 0.6 s/GB, < 500 MB
    --dry-run     qa2 split --dry-run of the same MS: the start-up (Python, numpy, casacore)
                  and the plan, paid once per run whatever the MS's size; the split's own
                  rate, without it, is printed below
    cp -a         of the whole MS: the disk's floor for reading it and writing
    3 MSes        qa2 split of a calibrated/ of three MSes (links to the same one under
                  three names, as the restore leaves links): a delivery's rate, where the
                  start-up is paid once and the two processes share the MSes' parts
    CASA          split + flagmanager + split + flagmanager, as the seed types them
                  (``make interop`` passes the CASA venv's Python)

Usage: python benchmarks/split_bench.py [--workdir DIR] [--repeat N] [--casa-python PY]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import QA2, Measured, measured

from almaqa2.testing import casa
from almaqa2.testing import measurementsets as example_ms

EB = "uid___A002_Xb00001_X1a1"
DELIVERY = 3  # MSes of the delivery row
NCHAN, TIMES = 2048, 350  # 5 scans x 350 integrations x 6 baselines of the 2048-channel spw


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _run(cmd: list[str], out: Path, env: dict[str, str] | None = None) -> Measured:
    """Seconds, peak RSS and CPU of ``cmd`` writing into ``out``, which is emptied first;
    all written back before the clock starts."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    return measured(cmd, cwd=out, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--casa-python", type=Path, help="a Python with casatasks")
    args = parser.parse_args()
    if args.casa_python:  # absolute, not resolved: a venv's python is a link out of it
        args.casa_python = Path(os.path.abspath(args.casa_python))
    work = Path(tempfile.mkdtemp(prefix="almaqa2-splitbench-", dir=args.workdir))
    try:
        source = work / f"{EB}.ms"
        example_ms.write_ms(source, EB, "2019.1.00001.S", nchan=NCHAN, times=TIMES,
                            layout=example_ms.ALMA)  # fmt: skip
        gb = _size(source) / 1e9
        delivery = work / "calibrated"
        delivery.mkdir()
        for n in range(DELIVERY):
            (delivery / f"{EB[:-1]}{n}.ms").symlink_to(source)
        files = [str(p) for p in source.rglob("*") if p.is_file()]
        subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)  # warm cache
        out = work / "out"
        several = f"{DELIVERY} MSes"
        runs: dict[str, list[Measured]] = {"qa2 split": [], "--dry-run": [], "cp -a": []}
        runs[several] = []
        reads = {several: DELIVERY * gb}  # the GB a row reads, where not the one MS's
        env = None
        if args.casa_python:
            runs["CASA split"] = []
            env = casa.environment(work / "home")
        for _ in range(args.repeat):  # interleaved: no kind gets the disk's best moments
            runs["cp -a"].append(_run(["cp", "-a", str(source), str(out / "copy")], out))
            runs["qa2 split"].append(_run([*QA2, "split", str(source), "--out", str(out)], out))
            runs["--dry-run"].append(_run([*QA2, "split", str(source), "--dry-run"], out))
            runs[several].append(_run([*QA2, "split", str(delivery), "--out", str(out)], out))
            if args.casa_python:
                cmd = [str(args.casa_python), "-c", casa.SEED_003, str(source), "corrected",
                       str(out), ""]  # fmt: skip
                runs["CASA split"].append(_run(cmd, out, env))
        print(f"MS: {gb:.2f} GB ({source.name}); best of {args.repeat}, warm cache, in {work}")
        print(f"{'':<12} {'seconds':>8} {'s/GB':>6} {'peak MB':>8} {'CPU s':>6}")
        best = {name: min(m.seconds for m in found) for name, found in runs.items()}
        for name, found in runs.items():
            rss, cpu = max(m.rss_mb for m in found), min(m.cpu for m in found)
            per_gb = best[name] / reads.get(name, gb)
            print(f"{name:<12} {best[name]:>8.2f} {per_gb:>6.2f} {rss:>8.0f} {cpu:>6.2f}")
        ours, fixed = best["qa2 split"], best["--dry-run"]
        print(f"qa2 split / cp -a of the MS: {ours / best['cp -a']:.2f}"
              "  (target: 0.6 s/GB; peak RSS < 500 MB)")  # fmt: skip
        print(f"qa2 split without its start-up and plan: {(ours - fixed) / gb:.2f} s/GB")
        if args.casa_python:
            print(f"CASA / qa2 split: {best['CASA split'] / ours:.1f} x  (target >= 4)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
