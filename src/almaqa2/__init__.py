"""almaqa2: package ALMA QA2 data reductions for review and delivery."""

from __future__ import annotations

from typing import Any

from almaqa2.errors import Almaqa2Error
from almaqa2.version import __version__

__all__ = ["Almaqa2Error", "Request", "Result", "__version__", "package", "prepare"]


def __getattr__(name: str) -> Any:
    """The packager is imported when first used (PEP 562): ``qa2 verify`` starts faster."""
    if name in ("Request", "Result", "package", "prepare"):
        from almaqa2.package import packager

        return getattr(packager, name)
    raise AttributeError(f"module 'almaqa2' has no attribute {name!r}")
