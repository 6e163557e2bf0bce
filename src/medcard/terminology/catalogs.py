"""Small code lists with one search: by code prefix or by every word of the name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from medcard.terminology import reference as cat


@dataclass(frozen=True)
class Concept:
    system: str
    code: str
    display: str  # Russian where known
    display_en: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def coding(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}

    def codeable(self, text: str | None = None) -> dict[str, object]:
        return {"coding": [self.coding()], "text": text or self.display}

    @property
    def label(self) -> str:
        return f"{self.code} {self.display}"


def _fold(text: str) -> str:
    return text.casefold().replace("ё", "е")


class Catalog:
    def __init__(self, name: str, concepts: Iterable[Concept]) -> None:
        self.name = name
        self.concepts = list(concepts)
        self._by_code = {_fold(c.code): c for c in self.concepts}
        self._haystack = [
            (c, _fold(c.code), _fold(f"{c.display} {c.display_en}")) for c in self.concepts
        ]

    def get(self, code: str) -> Concept | None:
        return self._by_code.get(_fold(code.strip()))

    def search(self, query: str, limit: int = 20) -> list[Concept]:
        q = _fold(query.strip())
        if not q:
            return []
        words = q.split()
        by_code = [c for c, code, _ in self._haystack if code.startswith(q)]
        by_name = [
            c
            for c, code, text in self._haystack
            if not code.startswith(q) and all(w in text for w in words)
        ]
        return (by_code + by_name)[:limit]

    def resolve(self, text: str) -> Concept | None:
        """What a plain text field holds: a code, "code name" as type-ahead fills it, or
        a name matching exactly one concept."""
        value = text.strip()
        if not value:
            return None
        found = self.get(value) or self.get(value.split(" ", 1)[0])
        if found is not None:
            return found
        matches = self.search(value, limit=2)
        return matches[0] if len(matches) == 1 else None


def _lab_tests() -> Catalog:
    return Catalog(
        "lab",
        (
            Concept(
                cat.LOINC_SYSTEM,
                t.loinc,
                t.ru,
                extra={"key": key, "ucum": t.ucum, "unit": t.unit},
            )
            for key, t in cat.LAB_TESTS.items()
        ),
    )


def _panels() -> Catalog:
    return Catalog(
        "panel",
        (
            Concept(system, code, ru, extra={"key": key, "analytes": ",".join(keys)})
            for key, (system, code, ru, keys) in cat.LAB_PANELS.items()
        ),
    )


def _vaccines() -> Catalog:
    return Catalog(
        "vaccine",
        (
            Concept(
                cat.VACCINE_SYSTEM,
                v.key,
                v.ru,
                extra={"cvx": v.cvx, "disease": v.disease, "route": v.route, "ml": str(v.dose_ml)},
            )
            for v in cat.VACCINES.values()
        ),
    )


def _medications() -> Catalog:
    return Catalog(
        "medication",
        (
            Concept(
                cat.ATC_SYSTEM,
                m.atc,
                m.ru,
                extra={"dose": m.dose_text, "unit": m.unit, "route": m.route},
            )
            for m in cat.MEDICATIONS.values()
        ),
    )


def _imaging() -> Catalog:
    return Catalog(
        "imaging",
        (
            Concept(
                cat.NMU_SYSTEM,
                s.nmu,
                s.ru,
                extra={
                    "modality": s.modality,
                    "modality_display": s.modality_display,
                    "body": s.body_part,
                    "key": key,
                },
            )
            for key, s in cat.IMAGING.items()
        ),
    )


def _documents() -> Catalog:
    return Catalog(
        "document",
        (
            Concept(
                cat.DOCUMENT_KIND_SYSTEM,
                d.code,
                d.ru,
                extra={"category": d.category, "days": str(d.valid_days), "text": d.conclusion},
            )
            for d in cat.DOCUMENTS.values()
            if d.category in ("certificate", "medical-report")
        ),
    )


def _services() -> Catalog:
    """Consultations one refers to: НМУ first visit of each specialty, plus imaging."""
    visits = [
        Concept(cat.NMU_SYSTEM, s.nmu_first, cat.nmu_visit_display(s, first=True))
        for s in cat.SPECIALTIES.values()
        if s.nmu_first
    ]
    scans = [Concept(cat.NMU_SYSTEM, s.nmu, s.ru) for s in cat.IMAGING.values()]
    hospital = [
        Concept(
            cat.ENCOUNTER_KIND_SYSTEM, "hospitalization", cat.ENCOUNTER_KINDS["hospitalization"]
        )
    ]
    return Catalog("service", [*visits, *scans, *hospital])


CATALOGS: dict[str, Catalog] = {
    c.name: c
    for c in (
        _lab_tests(),
        _panels(),
        _vaccines(),
        _medications(),
        _imaging(),
        _documents(),
        _services(),
    )
}


def catalog(name: str) -> Catalog:
    return CATALOGS[name]
