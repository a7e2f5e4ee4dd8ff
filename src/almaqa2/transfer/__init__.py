"""Moving a package: ``tarsplit`` (checksummed chunks named as the archive names them),
``verify`` (a package or chunks, and the PI's restore), ``untar`` with ``safetar`` (unpacking
what arrives), ``inspection`` (what a package or its chunks hold) and ``deliver`` (publishing
for the PI)."""
