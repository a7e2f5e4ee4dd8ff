"""The astronomical data itself: MeasurementSets through python-casacore (``ms``) and FITS
images through astropy and ISA-L (``fitsio``)."""

import os

# numpy comes with casacore and astropy, for arrays only: nothing here does matrix algebra.
# Its OpenBLAS would start a thread per core as numpy is imported, which spin for ~0.1 s
# of CPU taken from the work running beside them (the links of a fake package, the other
# half of a split).  Set before numpy is imported, in this process and those it forks; a
# user's own setting stands.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
