"""The astronomical data itself: MeasurementSets through python-casacore (``ms``) and FITS
images through astropy and ISA-L (``fitsio``)."""
