"""The ``qa2`` command line: ``app`` (the group, consoles, progress bar), ``commands``
(packaging and transfer), ``helpers`` (the reducer helpers), ``main`` (exit codes)."""

from .app import cli
from .main import entrypoint, main

__all__ = ["cli", "entrypoint", "main"]
