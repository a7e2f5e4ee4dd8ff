"""Unpack the real data the tests use from the pyuvdata 3.2.3 wheel (``make real-data``).

The wheel ships a real ALMA MeasurementSet (EB uid://A002/Xca5b1c/X5707, with its ``ASDM_*``
subtables; later pyuvdata versions no longer ship it) and real SMA calibration tables.
Usage: ``python scripts/real_data.py WHEEL DEST``: DEST receives the MS and the caltables.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

MS_TGZ = "pyuvdata/data/X5707_1spw_1scan_10chan_1time_1bl_noatm.ms.tar.gz"
CALTABLES = ("sma.ms.bcal", "sma.ms.amp.gcal", "sma.ms.pha.gcal", "sma.ms.tcal")


def main(wheel: Path, dest: Path) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            parts = PurePosixPath(info.filename).parts
            if info.filename == MS_TGZ:
                with zf.open(info) as raw, tarfile.open(fileobj=raw, mode="r:gz") as tar:
                    tar.extractall(dest, filter="data")
            elif len(parts) > 3 and parts[2] in CALTABLES and not info.is_dir():
                target = dest.joinpath(*parts[2:])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
