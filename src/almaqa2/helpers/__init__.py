"""Helpers for the reducer and the DRM around packaging (SPEC §9)."""
