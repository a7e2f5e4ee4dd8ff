"""Small real MeasurementSets for the example reductions (tests, ``make demo``, benchmarks).

Written with python-casacore as an ALMA MS looks to the packager: a main table with DATA,
CORRECTED_DATA and MODEL_DATA in tiled storage managers of their own, and the ANTENNA,
SPECTRAL_WINDOW, FIELD, OBSERVATION, STATE, DATA_DESCRIPTION and POLARIZATION subtables
filled.  The values below are what the README must report for such an MS.

What is observed is a ``Layout``, a table of spectral windows, fields and scans: ``SIMPLE``
(the README's example) or ``ALMA`` (for ``qa2 split``: a WVR spw of 4 channels and
channel-average spws of 1 as ALMA records them beside the science spws, a spw observed on
calibrators only, two polarization setups, a mosaic target, a SOURCE row per source per spw
and a FEED row per antenna per spw, as ALMA's MSes have them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from almaqa2.uid import to_fs

ANTENNAS = ("DA41", "DA42", "DV03", "PM01")
CHANNEL_HZ = 15.625e6
START_MJD_S = 56_262 * 86_400.0  # 2012-12-01 00:00:00 UTC (MJD 56262), in MJD seconds
INTEGRATION_S = 6.048
SB_UID = "uid://A002/X3b3400/X1b6"
DATA_COLUMNS = ("DATA", "CORRECTED_DATA", "MODEL_DATA")


@dataclass(frozen=True)
class Spw:
    name: str
    hz: float  # frequency of the first channel
    nchan: int | None  # None: the writer's ``nchan``
    polarization: int = 0


@dataclass(frozen=True)
class Scan:
    field: int
    state: int
    spws: tuple[int, ...] | None = None  # None: every spw


@dataclass(frozen=True)
class Layout:
    spws: tuple[Spw, ...]
    polarizations: tuple[tuple[int, ...], ...]  # the correlation types of each setup
    fields: tuple[tuple[str, int], ...]  # (name, source id)
    states: tuple[str, ...]  # OBS_MODE
    scans: tuple[Scan, ...]  # in observing order
    sources: bool = False  # a SOURCE table (a row per source per spw) and FEED rows
    tiled_flags: bool = False  # FLAG, WEIGHT, SIGMA in tiled managers of their own, as ALMA's

    def nchan(self, spw: int, default: int) -> int:
        return self.spws[spw].nchan or default

    def cell(self, spw: int, default: int) -> tuple[int, int]:
        """The shape of a visibility cell of ``spw``: (channels, correlations)."""
        return self.nchan(spw, default), len(self.polarizations[self.spws[spw].polarization])

    def scan_spws(self, scan: Scan) -> tuple[int, ...]:
        return scan.spws if scan.spws is not None else tuple(range(len(self.spws)))


XX_YY = (9, 12)
_BANDPASS = "CALIBRATE_BANDPASS#ON_SOURCE,CALIBRATE_WVR#ON_SOURCE"
_PHASE = "CALIBRATE_PHASE#ON_SOURCE,CALIBRATE_WVR#ON_SOURCE"
_TARGET = "OBSERVE_TARGET#ON_SOURCE"

SIMPLE = Layout(
    spws=(
        Spw("ALMA_RB_06#BB_1#SW-01", 230.0e9, None),
        Spw("ALMA_RB_06#BB_2#SW-01", 232.0e9, None),
    ),
    polarizations=(XX_YY,),
    fields=(("J1229+0203", 0), ("IRC+10216", 1)),
    states=(_BANDPASS, _PHASE, _TARGET),
    scans=(Scan(0, 0), Scan(0, 1), Scan(1, 2)),
)
"""Two spws of ``nchan`` channels; a calibrator (bandpass, then phase) and a target."""

ALMA = Layout(
    spws=(
        Spw("WVR#NOMINAL", 183.31e9, 4, polarization=1),
        Spw("ALMA_RB_06#BB_1#SW-01#FULL_RES", 230.0e9, None),
        Spw("ALMA_RB_06#BB_1#SW-01#CH_AVG", 230.1e9, 1),
        Spw("ALMA_RB_06#BB_2#SW-01#FULL_RES", 232.0e9, 8),
        Spw("ALMA_RB_06#BB_2#SW-01#CH_AVG", 232.05e9, 1),
        Spw("ALMA_RB_06#BB_3#SW-01#FULL_RES", 245.0e9, 32),
    ),
    polarizations=(XX_YY, (9,)),
    fields=(("J1229+0203", 0), ("J1256-0547", 1), ("IRC+10216", 2), ("IRC+10216", 2)),
    states=(
        "CALIBRATE_POINTING#ON_SOURCE",
        _BANDPASS,
        _PHASE,
        _TARGET,
    ),
    scans=(
        Scan(0, 0, (0, 5)),
        Scan(0, 1, (0, 1, 2, 3, 4)),
        Scan(1, 2, (0, 1, 2, 3, 4)),
        Scan(2, 3, (0, 1, 2, 3, 4)),
        Scan(1, 2, (0, 1, 2, 3, 4)),
        Scan(3, 3, (0, 1, 2, 3, 4)),
    ),
    sources=True,
    tiled_flags=True,
)
"""Science spws 1 (``nchan``) and 3 (8 channels) with their channel averages; the WVR spw
0 (4 channels, one correlation); spw 5 (32 channels) in the pointing scan only; calibrators
0 and 1; the target's two mosaic fields 2 and 3 (one source)."""

# The SIMPLE layout's facts, which the README tests read.
SPWS = tuple((i, s.name, s.hz) for i, s in enumerate(SIMPLE.spws))
"""(id, name, frequency of the first channel in Hz)."""
FIELDS = tuple(name for name, _source in SIMPLE.fields)
STATES = SIMPLE.states
FIELD_STATES = tuple((s.field, s.state) for s in SIMPLE.scans)
"""(field, state) of the scans, in observing order: one scan each."""
CORRELATIONS = XX_YY


def _arcol(name: str, value: object, valuetype: str, shape: Sequence[int] | None) -> dict[str, Any]:
    """A two-dimensional (channel x correlation) array column: of fixed shape where every
    spw has the same (as in the SIMPLE layout), else of the row's."""
    from casacore import tables

    if shape is None:
        desc: dict[str, Any] = tables.makearrcoldesc(name, value, ndim=2, valuetype=valuetype)
    else:
        desc = tables.makearrcoldesc(name, value, shape=list(shape), valuetype=valuetype, options=4)
    return desc


def write_ms(
    path: Path,
    eb: str | None,
    project: str,
    *,
    nchan: int = 16,
    times: int = 4,
    seed: int = 0,
    shared_tiles: bool = False,
    layout: Layout = SIMPLE,
) -> None:
    """Write an MS of ``times`` integrations per scan x all baselines x the scan's spws
    (``eb``: the EB it comes from, None for a concatenation).

    DATA is noise around 0.1, CORRECTED_DATA = DATA x 2 (a gain), MODEL_DATA = 1; in the
    ALMA layout WEIGHT varies (some 0) and some data are flagged, a few rows wholly.  Rows
    are written a block at a time, so that large MSes (benchmarks) need little memory.
    Each visibility column has a tiled storage manager of its own, as CASA writes them (so
    have FLAG, WEIGHT and SIGMA in the ALMA layout, as in pyuvdata's real ALMA MS);
    ``shared_tiles`` puts the three in one hypercube instead, which casacore cannot remove
    a column from.
    """
    from casacore import tables

    shapes = {layout.cell(spw, nchan) for spw in range(len(layout.spws))}
    fixed = next(iter(shapes)) if len(shapes) == 1 else None
    columns = [_arcol(name, 0j, "complex", fixed) for name in DATA_COLUMNS]
    if fixed is None:  # the MS's own FLAG column is of fixed shape: one of the row's instead
        columns.append(_arcol("FLAG", False, "boolean", None))
    desc = tables.maketabdesc(columns)
    groups = [DATA_COLUMNS] if shared_tiles else [(name,) for name in DATA_COLUMNS]
    if shared_tiles:
        desc["_define_hypercolumn_"] = {
            "TiledVis": {"HCdatanames": np.array(DATA_COLUMNS), "HCndim": 3}
        }
    tile = [max(c for _n, c in shapes), max(n for n, _c in shapes), 128]
    managers = [("TiledVis" if shared_tiles else f"Tiled{g[0]}", g, tile) for g in groups]
    if layout.tiled_flags:
        managers += [
            ("TiledFlag", ("FLAG",), tile),
            ("TiledWgt", ("WEIGHT",), [tile[0], 1024]),
            ("TiledSigma", ("SIGMA",), [tile[0], 1024]),
        ]
    dminfo = {
        f"*{i}": {
            "TYPE": "TiledShapeStMan",
            "NAME": name,
            "SPEC": {"DEFAULTTILESHAPE": np.array(shape, np.int32)},
            "COLUMNS": np.array(names),
        }
        for i, (name, names, shape) in enumerate(managers, 1)
    }
    ms = tables.default_ms(str(path), desc, dminfo)
    end = _main_rows(ms, layout, nchan, times, np.random.default_rng(seed))
    ms.close()
    _subtables(path, eb, project, nchan, end, layout)


def _main_rows(ms: Any, layout: Layout, nchan: int, times: int, rng: np.random.Generator) -> float:
    """Fill the main table, a block of integrations at a time; returns the end time."""
    pairs = [(a, b) for a in range(len(ANTENNAS)) for b in range(a + 1, len(ANTENNAS))]
    t = end = START_MJD_S
    for number, scan in enumerate(layout.scans, 1):
        for first in range(0, times, _BLOCK):
            stamps = [t + i * INTEGRATION_S for i in range(first, min(first + _BLOCK, times))]
            for spw in layout.scan_spws(scan):  # one shape per block
                rows = [(time, a, b, spw) for time in stamps for a, b in pairs]
                cell = layout.cell(spw, nchan)
                _put_rows(ms, np.array(rows), cell, (number, scan), layout.sources, rng)
        end = t + times * INTEGRATION_S
        t = end + 30.0  # slewing to the next scan
    return end


_BLOCK = 64  # integrations written at a time


def _put_rows(
    ms: Any,
    rows: np.ndarray,
    cell: tuple[int, int],
    scan: tuple[int, Scan],
    varied: bool,
    rng: np.random.Generator,
) -> None:
    """Append ``rows`` (time, antenna1, antenna2, spw) of one scan (number, scan) with
    cells of shape ``cell``; ``varied``: weights and flags that differ between rows."""
    number, observed = scan
    n = len(rows)
    shape = (n, *cell)
    start = ms.nrows()
    ms.addrows(n)
    noise = rng.standard_normal((2, *shape), dtype=np.float32)
    data = ((1 + noise[0] + 1j * noise[1]) / 10).astype(np.complex64)
    weight = sigma = np.ones((n, cell[1]), np.float32)
    flag = np.zeros(shape, bool)
    if varied:  # SIGMA (of DATA) and the calibrated WEIGHT independent, as after applycal
        sigma = rng.uniform(0.3, 3.0, (n, cell[1])).astype(np.float32)
        weight = rng.uniform(0.1, 4.0, (n, cell[1])).astype(np.float32)
        weight[rng.random((n, cell[1])) < 0.1] = 0  # some correlations weigh nothing
        flag = rng.random(shape) < 0.1
        flag[:: max(n // 3, 1)] = True  # a few rows wholly flagged
    values = {
        "TIME": rows[:, 0],
        "TIME_CENTROID": rows[:, 0],
        "ANTENNA1": rows[:, 1].astype(np.int32),
        "ANTENNA2": rows[:, 2].astype(np.int32),
        "DATA_DESC_ID": rows[:, 3].astype(np.int32),
        "FIELD_ID": np.full(n, observed.field, np.int32),
        "STATE_ID": np.full(n, observed.state, np.int32),
        "SCAN_NUMBER": np.full(n, number, np.int32),
        "INTERVAL": np.full(n, INTEGRATION_S),
        "EXPOSURE": np.full(n, INTEGRATION_S),
        "UVW": rng.uniform(-300, 300, (n, 3)),
        "WEIGHT": weight,
        "SIGMA": sigma,
        "FLAG": flag,
        "FLAG_ROW": flag.all(axis=(1, 2)),
        "DATA": data,
        "CORRECTED_DATA": 2 * data,
        "MODEL_DATA": np.ones(shape, np.complex64),
    }
    for name, value in values.items():
        ms.putcol(name, value, startrow=start, nrow=n)


def _subtables(
    path: Path, eb: str | None, project: str, nchan: int, end: float, layout: Layout
) -> None:
    from casacore import tables

    def fill(name: str, nrow: int, **columns: object) -> None:
        sub = tables.table(str(path / name), readonly=False, ack=False)
        sub.addrows(nrow)
        for column, value in columns.items():
            if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
                for row, cell in enumerate(value):  # cells of different shapes
                    sub.putcell(column, row, cell)
            else:
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
    spws = layout.spws
    counts = [layout.nchan(i, nchan) for i in range(len(spws))]
    fill(
        "SPECTRAL_WINDOW",
        len(spws),
        NAME=[s.name for s in spws],
        NUM_CHAN=np.array(counts, np.int32),
        CHAN_FREQ=[s.hz + np.arange(c) * CHANNEL_HZ for s, c in zip(spws, counts, strict=True)],
        CHAN_WIDTH=[np.full(c, CHANNEL_HZ) for c in counts],
        EFFECTIVE_BW=[np.full(c, CHANNEL_HZ) for c in counts],
        RESOLUTION=[np.full(c, CHANNEL_HZ) for c in counts],
        REF_FREQUENCY=np.array([s.hz for s in spws]),
        TOTAL_BANDWIDTH=np.array([c * CHANNEL_HZ for c in counts]),
        MEAS_FREQ_REF=np.full(len(spws), 5, np.int32),  # TOPO
    )
    pols = layout.polarizations
    fill(
        "POLARIZATION",
        len(pols),
        NUM_CORR=np.array([len(p) for p in pols], np.int32),
        CORR_TYPE=[np.array(p, np.int32) for p in pols],
        CORR_PRODUCT=[np.array([[r, r] for r in _receptors(p)], np.int32) for p in pols],
    )
    fill(
        "DATA_DESCRIPTION",
        len(spws),
        SPECTRAL_WINDOW_ID=np.arange(len(spws), dtype=np.int32),
        POLARIZATION_ID=np.array([s.polarization for s in spws], np.int32),
    )
    fields = layout.fields
    fill(
        "FIELD",
        len(fields),
        NAME=[name for name, _s in fields],
        CODE=["none"] * len(fields),
        SOURCE_ID=np.array([source for _n, source in fields], np.int32),
        TIME=np.full(len(fields), START_MJD_S),
        NUM_POLY=np.zeros(len(fields), np.int32),
        **{
            column: np.array([[[0.1 * i, -0.2 * i]] for i in range(len(fields))])
            for column in ("DELAY_DIR", "PHASE_DIR", "REFERENCE_DIR")
        },
    )
    fill(
        "STATE",
        len(layout.states),
        OBS_MODE=list(layout.states),
        SUB_SCAN=np.ones(len(layout.states), np.int32),
    )
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
    if layout.sources:
        _sources_and_feeds(path, layout, fill)


def _receptors(correlations: tuple[int, ...]) -> list[int]:
    """The receptor of each of XX (9) or YY (12), both sides of its product (CORR_PRODUCT
    holds a (receptor, receptor) pair per correlation)."""
    return [0 if c == 9 else 1 for c in correlations]


def _sources_and_feeds(path: Path, layout: Layout, fill: Any) -> None:
    """A SOURCE row per source per spw and a FEED row per antenna per spw, as ALMA's MSes
    have them (the subtables ``qa2 split`` re-indexes)."""
    from casacore import tables

    source = tables.default_ms_subtable("SOURCE", str(path / "SOURCE"))
    source.close()
    with tables.table(str(path), readonly=False, ack=False) as ms:
        ms.putkeyword("SOURCE", f"Table: {path / 'SOURCE'}")
    names = {source_id: name for name, source_id in layout.fields}
    pairs = [(s, w) for s in sorted(names) for w in range(len(layout.spws))]
    fill(
        "SOURCE",
        len(pairs),
        SOURCE_ID=np.array([s for s, _w in pairs], np.int32),
        SPECTRAL_WINDOW_ID=np.array([w for _s, w in pairs], np.int32),
        NAME=[names[s] for s, _w in pairs],
        TIME=np.full(len(pairs), START_MJD_S),
        INTERVAL=np.full(len(pairs), 3600.0),
        DIRECTION=np.array([[0.1 * s, -0.2 * s] for s, _w in pairs]),
        CALIBRATION_GROUP=np.zeros(len(pairs), np.int32),
        CODE=["none"] * len(pairs),
        NUM_LINES=np.zeros(len(pairs), np.int32),
        PROPER_MOTION=np.zeros((len(pairs), 2)),
    )
    feeds = [(a, w) for a in range(len(ANTENNAS)) for w in range(len(layout.spws))]
    fill(
        "FEED",
        len(feeds),
        ANTENNA_ID=np.array([a for a, _w in feeds], np.int32),
        SPECTRAL_WINDOW_ID=np.array([w for _a, w in feeds], np.int32),
        TIME=np.full(len(feeds), START_MJD_S),
        INTERVAL=np.full(len(feeds), 1e30),
        NUM_RECEPTORS=np.full(len(feeds), 2, np.int32),
        BEAM_OFFSET=np.zeros((len(feeds), 2, 2)),
        POLARIZATION_TYPE=np.array([["X", "Y"]] * len(feeds)),
        POL_RESPONSE=np.zeros((len(feeds), 2, 2), np.complex128),
        POSITION=np.zeros((len(feeds), 3)),
        RECEPTOR_ANGLE=np.zeros((len(feeds), 2)),
    )
