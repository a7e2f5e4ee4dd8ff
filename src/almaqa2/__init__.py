"""almaqa2: package ALMA QA2 data reductions for review and delivery."""

__version__ = "0.1.0"

from .errors import Almaqa2Error
from .package import Request, Result, package, prepare

__all__ = ["Almaqa2Error", "Request", "Result", "__version__", "package", "prepare"]
