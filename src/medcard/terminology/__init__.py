"""Code systems the workspace forms use, from packaged data, with type-ahead lookup.

МКБ-10 is the Russian edition from the НСИ dictionary 1.2.643.5.1.13.13.11.1005 with its
version (``medcard.terminology.nsi``), names exactly as НСИ publishes them.  Lab analytes (LOINC + UCUM),
vaccines (CVX + the national calendar), medicines (ATC), imaging services (НМУ + DICOM
modality) and certificate types come from ``medcard.terminology.reference``, the same tables
the synthetic population is coded with, so entries written by hand and generated ones
read alike.
"""

from __future__ import annotations

from medcard.terminology.catalogs import CATALOGS, Catalog, Concept, catalog
from medcard.terminology.icd10 import ICD10, UnknownCodeError

__all__ = ["CATALOGS", "ICD10", "Catalog", "Concept", "UnknownCodeError", "catalog"]
