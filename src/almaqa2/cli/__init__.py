"""The ``qa2`` command line: ``app`` (the group, consoles, progress bar), ``commands``
(packaging and transfer), ``helpers`` (the reducer helpers), ``main`` (exit codes)."""

from almaqa2.cli.app import cli
from almaqa2.cli.main import entrypoint, main

__all__ = ["cli", "entrypoint", "main"]
