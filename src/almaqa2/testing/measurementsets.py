"""Small real MeasurementSets for the example reductions (tests, ``make demo``, benchmarks).

Written with python-casacore as an ALMA MS looks to the packager: a main table with DATA,
CORRECTED_DATA and MODEL_DATA in tiled storage managers of their own, and the ANTENNA,
SPECTRAL_WINDOW, FIELD, OBSERVATION, STATE, DATA_DESCRIPTION and POLARIZATION subtables
filled.  The values below are what the README must report for such an MS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from almaqa2.uid import to_fs

ANTENNAS = ("DA41", "DA42", "DV03", "PM01")
SPWS = ((0, "ALMA_RB_06#BB_1#SW-01", 230.0e9), (1, "ALMA_RB_06#BB_2#SW-01", 232.0e9))
"""(id, name, frequency of the first channel in Hz)."""
CHANNEL_HZ = 15.625e6
FIELDS = ("J1229+0203", "IRC+10216")
STATES = (
    "CALIBRATE_BANDPASS#ON_SOURCE,CALIBRATE_WVR#ON_SOURCE",
    "CALIBRATE_PHASE#ON_SOURCE,CALIBRATE_WVR#ON_SOURCE",
    "OBSERVE_TARGET#ON_SOURCE",
)
FIELD_STATES = ((0, 0), (0, 1), (1, 2))
"""(field, state) of the scans, in observing order: one scan each."""
START_MJD_S = 56_262 * 86_400.0  # 2012-12-01 00:00:00 UTC (MJD 56262), in MJD seconds
INTEGRATION_S = 6.048
CORRELATIONS = (9, 12)  # XX, YY
SB_UID = "uid://A002/X3b3400/X1b6"
DATA_COLUMNS = ("DATA", "CORRECTED_DATA", "MODEL_DATA")


def _arcol(name: str, nchan: int) -> dict:
    from casacore import tables

    return tables.makearrcoldesc(
        name, 0j, shape=[nchan, len(CORRELATIONS)], valuetype="complex", options=4
    )


def write_ms(
    path: Path,
    eb: str | None,
    project: str,
    *,
    nchan: int = 16,
    times: int = 4,
    seed: int = 0,
    shared_tiles: bool = False,
) -> None:
    """Write an MS of ``times`` integrations per scan x all baselines x all spws
    (``eb``: the EB it comes from, None for a concatenation).

    DATA is noise around 0.1, CORRECTED_DATA = DATA x 2 (a gain), MODEL_DATA = 1.  Rows
    are written a block at a time, so that large MSes (benchmarks) need little memory.
    Each visibility column has a tiled storage manager of its own, as CASA writes them;
    ``shared_tiles`` puts the three in one hypercube instead, which casacore cannot remove
    a column from.
    """
    from casacore import tables

    desc = tables.maketabdesc([_arcol(name, nchan) for name in DATA_COLUMNS])
    groups = [DATA_COLUMNS] if shared_tiles else [(name,) for name in DATA_COLUMNS]
    if shared_tiles:
        desc["_define_hypercolumn_"] = {
            "TiledVis": {"HCdatanames": np.array(DATA_COLUMNS), "HCndim": 3}
        }
    dminfo = {
        f"*{i}": {
            "TYPE": "TiledShapeStMan",
            "NAME": "TiledVis" if shared_tiles else f"Tiled{names[0]}",
            "SPEC": {"DEFAULTTILESHAPE": np.array([len(CORRELATIONS), nchan, 128], np.int32)},
            "COLUMNS": np.array(names),
        }
        for i, names in enumerate(groups, 1)
    }
    ms = tables.default_ms(str(path), desc, dminfo)
    end = _main_rows(ms, nchan, times, np.random.default_rng(seed))
    ms.close()
    _subtables(path, eb, project, nchan, end)


def _main_rows(ms: Any, nchan: int, times: int, rng: np.random.Generator) -> float:
    """Fill the main table, a block of integrations at a time; returns the end time."""
    pairs = [(a, b) for a in range(len(ANTENNAS)) for b in range(a + 1, len(ANTENNAS))]
    t = end = START_MJD_S
    for scan, (field, state) in enumerate(FIELD_STATES, 1):
        for first in range(0, times, _BLOCK):
            rows = [
                (t + i * INTEGRATION_S, a, b, spw)
                for i in range(first, min(first + _BLOCK, times))
                for a, b in pairs
                for spw, _name, _freq in SPWS
            ]
            _put_rows(ms, np.array(rows), nchan, (scan, field, state), rng)
        end = t + times * INTEGRATION_S
        t = end + 30.0  # slewing to the next scan
    return end


_BLOCK = 64  # integrations written at a time


def _put_rows(
    ms: Any, rows: np.ndarray, nchan: int, ids: tuple[int, int, int], rng: np.random.Generator
) -> None:
    """Append ``rows`` (time, antenna1, antenna2, spw) of one scan (scan, field, state)."""
    scan, field, state = ids
    n = len(rows)
    shape = (n, nchan, len(CORRELATIONS))
    start = ms.nrows()
    ms.addrows(n)
    noise = rng.standard_normal((2, *shape), dtype=np.float32)
    data = ((1 + noise[0] + 1j * noise[1]) / 10).astype(np.complex64)
    values = {
        "TIME": rows[:, 0],
        "TIME_CENTROID": rows[:, 0],
        "ANTENNA1": rows[:, 1].astype(np.int32),
        "ANTENNA2": rows[:, 2].astype(np.int32),
        "DATA_DESC_ID": rows[:, 3].astype(np.int32),
        "FIELD_ID": np.full(n, field, np.int32),
        "STATE_ID": np.full(n, state, np.int32),
        "SCAN_NUMBER": np.full(n, scan, np.int32),
        "INTERVAL": np.full(n, INTEGRATION_S),
        "EXPOSURE": np.full(n, INTEGRATION_S),
        "UVW": rng.uniform(-300, 300, (n, 3)),
        "WEIGHT": np.ones((n, len(CORRELATIONS)), np.float32),
        "SIGMA": np.ones((n, len(CORRELATIONS)), np.float32),
        "FLAG": np.zeros(shape, bool),
        "DATA": data,
        "CORRECTED_DATA": 2 * data,
        "MODEL_DATA": np.ones(shape, np.complex64),
    }
    for name, value in values.items():
        ms.putcol(name, value, startrow=start, nrow=n)


def _subtables(path: Path, eb: str | None, project: str, nchan: int, end: float) -> None:
    from casacore import tables

    def fill(name: str, nrow: int, **columns: object) -> None:
        sub = tables.table(str(path / name), readonly=False, ack=False)
        sub.addrows(nrow)
        for column, value in columns.items():
            sub.putcol(column, value)
        sub.close()

    n = len(ANTENNAS)
    fill(
        "ANTENNA",
        n,
        NAME=list(ANTENNAS),
        STATION=[f"A{i:03d}" for i in range(n)],
        DISH_DIAMETER=np.full(n, 12.0),
        POSITION=np.tile([2225142.18, -5440307.37, -2481029.85], (n, 1)),
        TYPE=["GROUND-BASED"] * n,
        MOUNT=["ALT-AZ"] * n,
    )
    channels = np.arange(nchan) * CHANNEL_HZ
    fill(
        "SPECTRAL_WINDOW",
        len(SPWS),
        NAME=[name for _i, name, _f in SPWS],
        NUM_CHAN=np.full(len(SPWS), nchan, np.int32),
        CHAN_FREQ=np.array([f + channels for _i, _n, f in SPWS]),
        CHAN_WIDTH=np.full((len(SPWS), nchan), CHANNEL_HZ),
        EFFECTIVE_BW=np.full((len(SPWS), nchan), CHANNEL_HZ),
        RESOLUTION=np.full((len(SPWS), nchan), CHANNEL_HZ),
        REF_FREQUENCY=np.array([f for _i, _n, f in SPWS]),
        TOTAL_BANDWIDTH=np.full(len(SPWS), nchan * CHANNEL_HZ),
        MEAS_FREQ_REF=np.full(len(SPWS), 5, np.int32),  # TOPO
    )
    fill(
        "POLARIZATION",
        1,
        NUM_CORR=np.array([len(CORRELATIONS)], np.int32),
        CORR_TYPE=np.array([CORRELATIONS], np.int32),
        CORR_PRODUCT=np.array([[[0, 1], [0, 1]]], np.int32),
    )
    fill(
        "DATA_DESCRIPTION",
        len(SPWS),
        SPECTRAL_WINDOW_ID=np.array([i for i, _n, _f in SPWS], np.int32),
        POLARIZATION_ID=np.zeros(len(SPWS), np.int32),
    )
    fill("FIELD", len(FIELDS), NAME=list(FIELDS), CODE=["none"] * len(FIELDS))
    fill("STATE", len(STATES), OBS_MODE=list(STATES), SUB_SCAN=np.ones(len(STATES), np.int32))
    schedule = [f"SchedulingBlock {SB_UID}"]
    if eb is not None:
        schedule.append("ExecBlock uid://" + to_fs(eb).removeprefix("uid___").replace("_", "/"))
    fill(
        "OBSERVATION",
        1,
        TELESCOPE_NAME=["ALMA"],
        PROJECT=[project],
        OBSERVER=["aastronomer"],
        TIME_RANGE=np.array([[START_MJD_S, end]]),
        SCHEDULE=np.array([schedule]),
    )
