"""Build example reduction directories from a listing (tests, ``make demo``, trying things).

A listing has one path a line, relative to the directory to build:

- ``name/`` is a CASA table directory (``table.dat``, ``table.f0``), and a real small
  MeasurementSet (python-casacore) when its name is an EB's MS (``*.ms``, ``*.ms.split``,
  ``*.ms.split.cal``); ``*.plots/`` is a directory of PNG plots; a bare EB UID with ``/``
  is an ASDM (``ASDM.xml``);
- ``link -> target`` is a symbolic link;
- any other line is a file with a few bytes; ``*.fits`` is a small valid FITS image,
  ``*.log`` names a CASA version, as real logs do, and the pipeline's XML (``PPR_*.xml``,
  ``*.pprequest.xml``, ``*.pipeline_manifest.xml``) names the member OUS (from a
  ``MOUS_uid___*`` directory or the file name) and every EB of the listing.

Usage: ``python -m almaqa2.example LISTING DEST [PROJECT]``.
A test fixture and a demonstration, not part of packaging: nothing in ``almaqa2`` outside
``almaqa2.testing`` imports it.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import numpy as np
from astropy.io import fits

from almaqa2.package.layouts.pipeline import XML_NAMES
from almaqa2.package.readme import TEMPLATE
from almaqa2.package.scan import MS_NAME
from almaqa2.testing import measurementsets as example_ms
from almaqa2.uid import eb_of_name, is_uid, uid_prefix

CASA_VERSION = "4.2.2"
PROJECT = "2011.0.00229.S"
HEADER = (
    TEMPLATE.replace("PI name:", "PI name: A. Astronomer")
    .replace("Project title:", "Project title: The molecular envelope of IRC+10216")
    .replace("Configuration:", "Configuration: C34-4")
    .replace("Proposed rms:", "Proposed rms: 0.5 mJy/beam in 1 km/s")
    .replace("Proposed beam size:", "Proposed beam size: 0.8 arcsec")
    .replace("QA2 Result:", "QA2 Result: Pass")
)
"""A README header as a reducer fills it: the example's fields only the reducer knows."""


def fluxscale_output(label: str) -> str:
    """CASA fluxscale's lines (as seed 002 shows them) for a phase calibrator in four spws,
    its flux density a few per cent different for each ``label`` (each EB)."""
    scale = 1 + hashlib.md5(label.encode()).digest()[0] / 255 * 0.04
    lines = [
        f"INFO fluxscale\t Flux density for J1751+0939 in SpW={spw} (freq={ghz * 1e9:.6g} Hz)"
        f" is: {flux * scale:.6g} +/- 0.00677892 (SNR = 328.631, N = 9)"
        for spw, ghz, flux in ((0, 216.276, 2.22776), (1, 217.226, 2.22697),
                               (2, 219.950, 2.20802), (3, 218.298, 2.22391))
    ]  # fmt: skip
    lines.append(
        f"INFO fluxscale\t Fitted spectrum for J1751+0939 with fitorder=1: Flux density ="
        f" {2.19474 * scale:.6g} +/- 0.00107564 (freq=223.031 GHz) spidx=-0.549826 +/- 0.016824"
    )
    return "\n".join(lines) + "\n"


def png(label: str) -> bytes:
    """A real 16x16 PNG of one colour chosen by ``label``, which it also carries as a
    comment (so that every plot's bytes differ): browsers draw it, ``file`` knows it."""
    red, green, blue = hashlib.md5(label.encode()).digest()[:3]
    rows = b"".join(b"\0" + bytes([red, green, blue]) * 16 for _ in range(16))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
        + chunk(b"tEXt", b"Comment\0" + label.encode()) + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )  # fmt: skip


def write_fits(path: Path, name: str) -> None:
    """A small radio image: 1 Stokes x 1 channel x 8 x 8 pixels with a beam."""
    data = np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8) / 64
    header = fits.Header()
    header.update(
        OBJECT="IRC+10216",
        BUNIT="Jy/beam",
        BMAJ=1.2e-4,
        BMIN=1.0e-4,
        BPA=35.0,
        RESTFRQ=2.30538e11,
        CTYPE1="RA---SIN",
        CTYPE2="DEC--SIN",
        CTYPE3="FREQ",
        CTYPE4="STOKES",
        ORIGIN=name,
    )
    fits.PrimaryHDU(data, header).writeto(path)


def _archive_form(uid: str) -> str:
    return "uid://" + uid.removeprefix("uid___").replace("_", "/")


# (manifest element, the pattern of the sibling file it names), in the pipeline's order
_MANIFEST_FILES = (
    ("piperequest", r"PPR_.*\.xml|.*\.pprequest\.xml"),
    ("weblog", r".*weblog\.tgz"),
    ("casa_cmdlog", r".*\.casa_commands\.log"),
    ("pipescript", r".*\.casa_pipescript\.py"),
    ("restorescript", r".*\.casa_piperestorescript\.py"),
    ("aux_products_file", r".*\.auxproducts\.tgz"),
)


def pipeline_manifest(name: str, mous: str, ebs: Iterable[str], siblings: list[str]) -> str:
    """A products manifest in the pipeline's structure and layout, naming the files of
    ``siblings`` (the products beside it) where the pipeline's manifest names them."""

    def named(pattern: str) -> list[str]:
        return sorted(s for s in siblings if re.fullmatch(pattern, s))

    lines = ['<?xml version="1.0" ?>', f'<piperesults name="{mous}">', f'  <ous name="{mous}">']
    lines.append(f'    <manifest name="{name}" datatype="pipeline_manifest" format="xml"/>')
    lines.append('    <casaversion name="6.6.1-17"/>')
    for element, pattern in _MANIFEST_FILES:
        lines += [
            f'    <{element} name="{found}" format="{found.rsplit(".", 1)[-1]}"/>'
            for found in named(pattern)
        ]
    lines.append('    <session name="session_1">')
    for element, ending in (("caltables", "caltables.tgz"), ("aux_caltables", "auxcaltables.tgz")):
        lines += [
            f'      <{element} name="{f}" session="session_1" format="tgz"/>'
            for f in named(rf".*\.session_1\.{ending}")
        ]
    for eb in ebs:
        if f"{eb}.ms.flagversions.tgz" not in siblings:
            continue
        lines.append(f'      <asdm name="{eb}" datatype="asdm" format="sdm">')
        lines.append(
            f'        <finalflags name="{eb}.ms.flagversions.tgz" asdm="{eb}" format="tgz"/>'
        )
        lines.append(f'        <applycmds name="{eb}.ms.calapply.txt" asdm="{eb}" format="txt"/>')
        lines.append("      </asdm>")
    lines.append("    </session>")
    lines += [
        f'    <image name="{f}" imtype="science" manualstring="N/A"/>' for f in named(r".*\.fits")
    ]
    lines += ["  </ous>", "</piperesults>"]
    return "\n".join(lines) + "\n"


def pipeline_xml(mous: str, ebs: Iterable[str], project: str) -> str:
    """The parts of a pipeline request that the stager reads."""
    refs = "".join(
        f"<AsdmIdentifier><ExecBlockId>{_archive_form(eb)}</ExecBlockId></AsdmIdentifier>"
        for eb in ebs
    )
    return (
        f"<SciPipeRequest><ProjectSummary><ProposalCode>{project}</ProposalCode>"
        f'</ProjectSummary><ProjectStructure><OUSStatusRef entityId="{_archive_form(mous)}"/>'
        f"</ProjectStructure><ProcessingRequests><ProcessingRequest><DataSet><SessionSet>"
        f"<Session>{refs}</Session></SessionSet></DataSet></ProcessingRequest>"
        "</ProcessingRequests></SciPipeRequest>\n"
    )


def _mous_of(rel: str) -> str:
    """The member OUS an XML file of a listing belongs to: its MOUS_ directory or name."""
    for part in reversed(PurePosixPath(rel).parts):
        uid = uid_prefix(part.removeprefix("MOUS_").removeprefix("PPR_"))
        if uid:
            return uid
    return "uid___A001_X0_X0"


def _file(path: Path, rel: str, lines: list[str], ebs: list[str], project: str) -> None:
    if path.name.endswith("pipeline_manifest.xml"):
        here = PurePosixPath(rel).parent
        siblings = [PurePosixPath(x).name for x in lines if PurePosixPath(x).parent == here]
        path.write_text(pipeline_manifest(path.name, _mous_of(rel), ebs, siblings))
    elif XML_NAMES.fullmatch(path.name):
        path.write_text(pipeline_xml(_mous_of(rel), ebs, project))
    elif rel.endswith(".fits"):
        write_fits(path, rel)
    elif rel.endswith(".png"):
        path.write_bytes(png(rel))
    elif rel.endswith(".fluxscale"):
        path.write_text(fluxscale_output(rel))
    elif rel.endswith(".log"):
        path.write_text(f"INFO casa CASA Version {CASA_VERSION} (r30986)\nlog of {rel}\n")
    else:
        path.write_text(f"contents of {rel}\n")


def build(listing: Iterable[str], root: Path, project: str = PROJECT) -> Path:
    """Create the tree described by ``listing`` under ``root`` (which must not exist);
    its MeasurementSets say they belong to ``project``."""
    root.mkdir(parents=True)
    links = []
    lines = [line.strip() for line in listing if line.strip() and not line.startswith("#")]
    ebs = sorted({uid for line in lines if (uid := eb_of_name(PurePosixPath(line).name))})
    for line in lines:
        if " -> " in line:
            links.append(line.split(" -> ", 1))
            continue
        path = root / line
        path.parent.mkdir(parents=True, exist_ok=True)
        if not line.endswith("/"):
            _file(path, line, lines, ebs, project)
            continue
        name = path.name
        if MS_NAME.fullmatch(name):
            example_ms.write_ms(path, uid_prefix(name), project)
            continue
        path.mkdir(parents=True, exist_ok=True)
        if name.endswith(".plots"):
            for i in (1, 2):
                (path / f"plot{i}.png").write_bytes(png(f"{line}{i}"))
        elif is_uid(name) or name.endswith(".asdm.sdm"):
            (path / "ASDM.xml").write_text(f"<ASDM>{name}</ASDM>\n")
        else:
            (path / "table.dat").write_bytes(b"table of " + line.encode())
            (path / "table.f0").write_bytes(os.urandom(256))
    for link, target in links:
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        (root / link).symlink_to(target)
    return root


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    build(Path(args[0]).read_text().splitlines(), Path(args[1]), *args[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
