"""Fixtures for the tests, the demo and the benchmarks: example reductions built from a
listing (``reductions``) with small real MeasurementSets (``measurementsets``).  Kept apart
from the packager: no module outside this one imports them."""
