"""The version of almaqa2 (its own module, so that importing it loads nothing else)."""

__version__ = "0.1.0"
