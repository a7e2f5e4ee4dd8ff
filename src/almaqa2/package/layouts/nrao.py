"""The NRAO manual layout (seed 004): origpath is named by the MOUS UID and holds
``Calibration_X*`` EB directories, ``Combination/calibrated`` and ``Imaging``.
"""

from __future__ import annotations

from pathlib import Path

from almaqa2.uid import is_uid


def mous_from_name(root: Path) -> str | None:
    """The MOUS UID that names ``root``, if it is named by one."""
    return root.name if is_uid(root.name) else None
