"""``qa2 fluxscale``: CASA's lines (seed 002's, inside a real-looking log) become a table
per source of spw by EB, JSON, and a PNG of flux against frequency with each EB's fit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from almaqa2.cli import main as cli_main
from almaqa2.helpers.fluxscale import parse

DATA = Path(__file__).parent / "data"
X66D = "uid___A002_Xdd9c61_X66d"
XA12 = "uid___A002_X4sda4d_Xa12"


@pytest.fixture
def sb(tmp_path: Path) -> Path:
    """An SB with two EB directories, each holding its fluxscale output."""
    text = (DATA / "X66d.fluxscale").read_text()
    for short, uid, scale in (("X66d", X66D, 1.0), ("Xa12", XA12, 1.1)):
        (tmp_path / "SB" / short).mkdir(parents=True)
        shifted = re.sub(r"is: ([\d.]+)", lambda m, k=scale: f"is: {float(m[1]) * k:.6g}", text)
        (tmp_path / "SB" / short / f"{uid}.ms.split.fluxscale").write_text(shifted)
    (tmp_path / "SB" / "X66d" / "casa-20140827-164000.log").write_text("INFO nothing here\n")
    return tmp_path / "SB"


def test_parse_the_seed_lines_among_others() -> None:
    measurements, fits = parse((DATA / "X66d.fluxscale").read_text(), "X66d")
    assert len(measurements) == 6 and len(fits) == 2
    first = measurements[0]
    assert (first.source, first.spw, first.freq_hz) == ("J1751+0939", 0, 2.16276e11)
    assert (first.flux, first.error, first.snr, first.n) == (2.22776, 0.00677892, 328.631, 9)
    fit = fits[1]
    assert (fit.source, fit.fitorder, fit.flux, fit.freq_ghz) == (
        "J1851+0035",
        1,
        0.285309,
        223.031,
    )
    assert (fit.spidx, fit.spidx_error) == (-1.4004, 0.573228)
    assert fit.at(223.031) == pytest.approx(0.285309)


def test_table_per_source_and_eb(sb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["fluxscale", str(sb)]) == 0  # 10 % apart: 5 % from the median, not flagged
    text = capsys.readouterr().out
    assert "J1751+0939" in text and "J1851+0035" in text
    assert "X66d" in text and "Xa12" in text  # the EBs' short names head the columns
    assert "2.228 ± 0.0068" in text  # X66d, spw 0
    assert "2.451 ± 0.0068" in text  # Xa12 is 10 % higher in this SB: the spread shows it
    assert text.count("9.5 %") == 6  # (1.1 - 1) / 1.05 on every row
    assert "X66d: J1751+0939 2.195 ± 0.0011 Jy at 223.031 GHz, spectral index -0.55" in text


def test_json(sb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["fluxscale", str(sb / "X66d"), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["ebs"] == [X66D]
    assert len(found["measurements"]) == 6 and len(found["fits"]) == 2
    assert found["measurements"][5] == {
        "eb": X66D, "source": "J1851+0035", "spw": 7, "freq_hz": 2.32452e11,
        "flux": 0.26856, "error": 0.00338729, "snr": 79.2846, "n": 9,
    }  # fmt: skip


def test_plot_is_a_png_with_both_ebs(sb: Path, tmp_path: Path) -> None:
    png = tmp_path / "flux.png"
    assert cli_main(["fluxscale", str(sb), "--plot", str(png)]) == 0
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert (width, height) == (700, 640)  # two source panels


def test_no_flux_lines_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "casa-20140827.log"
    log.write_text("INFO fluxscale nothing derived\n")
    assert cli_main(["fluxscale", str(log)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "no 'Flux density for ... in SpW=...' line found" in err and "Traceback" not in err


XB03 = "uid___A002_Xb0b0b0_Xb03"


def _outlier_sb(root: Path) -> Path:
    """Three EBs of one SB; the third measured spw 2 of J1751+0939 28.6 % high."""
    text = (DATA / "X66d.fluxscale").read_text()
    for short, uid, scale in (("X66d", X66D, 1.0), ("Xa12", XA12, 1.02), ("Xb03", XB03, 0.99)):
        (root / "SB" / short).mkdir(parents=True)
        shifted = re.sub(r"is: ([\d.]+)", lambda m, k=scale: f"is: {float(m[1]) * k:.6g}", text)
        if short == "Xb03":
            shifted = re.sub(
                r"(J1751\+0939 in SpW=2 .* is: )([\d.]+)",
                lambda m: f"{m[1]}{float(m[2]) * 1.286 / 0.99:.6g}",
                shifted,
            )
        (root / "SB" / short / f"{uid}.ms.split.fluxscale").write_text(shifted)
    return root / "SB"


def _red_pixels(png: Path) -> int:
    import matplotlib.image

    image = matplotlib.image.imread(png)
    red, green, blue = image[..., 0], image[..., 1], image[..., 2]
    return int(((red > 0.9) & (green < 0.15) & (blue < 0.15)).sum())


def test_an_outlier_is_flagged_in_the_table_the_json_and_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17: one EB 28.6 % off the others in one spw is named, marked and ringed; the
    command exits 1.  Without it, exit 0 and no ring."""
    sb = _outlier_sb(tmp_path)
    png = tmp_path / "flux.png"
    assert cli_main(["fluxscale", str(sb), "--plot", str(png)]) == 1
    text = capsys.readouterr().out
    assert "!" in text and "outlier (> 10%): Xb03 J1751+0939 spw 2" in text
    assert re.search(r"is \+2[67]\.\d% from the median of the EBs", text), text
    assert text.count("outlier (") == 1  # the other two EBs agree within 2 %
    assert _red_pixels(png) > 50  # the ring around it

    assert cli_main(["fluxscale", str(sb), "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    [outlier] = found["outliers"]
    assert (outlier["eb"], outlier["source"], outlier["spw"]) == (XB03, "J1751+0939", 2)
    assert 0.26 < outlier["deviation"] < 0.28 and isinstance(outlier["reference"], float)
    assert all(isinstance(row["spread"], float) for row in found["spread"])

    assert cli_main(["fluxscale", str(sb), "--threshold", "0.3", "--plot", str(png)]) == 0
    assert _red_pixels(png) == 0


def test_one_eb_has_no_spread_and_is_compared_with_its_fit(
    sb: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["fluxscale", str(sb / "X66d")]) == 0
    text = capsys.readouterr().out
    assert "0.0 %" not in text and "spread" in text
    rows = [line for line in text.splitlines() if re.match(r"\s+\d+ │ \d{3}\.\d{6}", line)]
    assert len(rows) == 6 and all(line.rstrip().endswith("-") for line in rows)
    assert cli_main(["fluxscale", str(sb / "X66d"), "--json"]) == 0
    assert all(row["spread"] is None for row in json.loads(capsys.readouterr().out)["spread"])
    # against its own fitted spectrum: spw 0 of J1851+0035 lies 2.3 % below it
    assert cli_main(["fluxscale", str(sb / "X66d"), "--threshold", "0.02"]) == 1
    said = capsys.readouterr().out
    assert said.count("outlier (") == 1 and "J1851+0035 spw 0" in said
    assert re.search(r"is -2\.\d% from its fitted spectrum", said), said
