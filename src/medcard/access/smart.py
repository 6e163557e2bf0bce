"""SMART App Launch scopes, v2 syntax with the v1 forms accepted.

https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
``patient/Observation.rs``, ``user/*.cruds``, ``system/*.*``; v1 ``read``/``write``/``*``
are mapped to their v2 letters.  Scopes can only narrow what a role allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PERMISSIONS = "cruds"
_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.(\*|read|write|[cruds]+)(\?.*)?$")
_V1 = {"*": "cruds", "read": "rs", "write": "cud"}


@dataclass(frozen=True)
class Scope:
    level: str  # patient | user | system
    resource_type: str  # a type or "*"
    permissions: frozenset[str]

    def grants(self, resource_type: str, permission: str) -> bool:
        return permission in self.permissions and self.resource_type in ("*", resource_type)


@dataclass(frozen=True)
class Scopes:
    scopes: tuple[Scope, ...]
    other: tuple[str, ...] = ()  # openid, fhirUser, launch/patient, offline_access ...

    @classmethod
    def parse(cls, text: str) -> Scopes:
        scopes, other = [], []
        for word in text.split():
            m = _SCOPE.match(word)
            if not m:
                other.append(word)
                continue
            perms = _V1.get(m.group(3), m.group(3))
            if any(perms.count(c) > 1 for c in perms) or list(perms) != sorted(
                perms, key=PERMISSIONS.index
            ):
                other.append(word)  # v2 requires the letters once each, in cruds order
                continue
            scopes.append(Scope(m.group(1), m.group(2), frozenset(perms)))
        return cls(tuple(scopes), tuple(other))

    def levels_granting(self, resource_type: str, permission: str) -> set[str]:
        return {s.level for s in self.scopes if s.grants(resource_type, permission)}

    def __str__(self) -> str:
        words = [
            f"{s.level}/{s.resource_type}.{''.join(c for c in PERMISSIONS if c in s.permissions)}"
            for s in self.scopes
        ]
        return " ".join([*words, *self.other])
