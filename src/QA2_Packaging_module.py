"""Compatibility module: ``from QA2_Packaging_module import *`` keeps old scripts working."""

from almaqa2.package.legacy import QA_Packager, QA_Pipeline_Stager

__all__ = ["QA_Packager", "QA_Pipeline_Stager"]
