"""OperationOutcome: the one shape every FHIR error takes.

https://hl7.org/fhir/R4/operationoutcome.html
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    severity: str  # fatal | error | warning | information
    code: str  # http://hl7.org/fhir/issue-type
    diagnostics: str
    expression: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            out["expression"] = list(self.expression)
        return out


def outcome(*issues: Issue) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.as_json() for i in issues]}


def information(text: str) -> dict[str, Any]:
    return outcome(Issue("information", "informational", text))


@dataclass
class FhirError(Exception):
    """A failure the client caused or must know about; becomes an OperationOutcome."""

    status: int
    code: str
    diagnostics: str
    expression: tuple[str, ...] = ()
    extra: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.diagnostics)

    def issues(self) -> list[Issue]:
        return [Issue("error", self.code, self.diagnostics, self.expression), *self.extra]

    def as_outcome(self) -> dict[str, Any]:
        return outcome(*self.issues())


def bad_request(msg: str, *expression: str) -> FhirError:
    return FhirError(400, "invalid", msg, expression)


def not_found(msg: str) -> FhirError:
    return FhirError(404, "not-found", msg)


def gone(msg: str) -> FhirError:
    return FhirError(410, "deleted", msg)


def forbidden(msg: str) -> FhirError:
    return FhirError(403, "forbidden", msg)


def unauthorized(msg: str) -> FhirError:
    return FhirError(401, "login", msg, headers={"WWW-Authenticate": 'Bearer realm="medcard"'})


def conflict(msg: str) -> FhirError:
    return FhirError(409, "conflict", msg)


def precondition_failed(msg: str) -> FhirError:
    return FhirError(412, "conflict", msg)


def unprocessable(msg: str, *expression: str, extra: list[Issue] | None = None) -> FhirError:
    return FhirError(422, "processing", msg, expression, extra or [])


def not_supported(msg: str) -> FhirError:
    return FhirError(400, "not-supported", msg)


def unavailable(msg: str) -> FhirError:
    return FhirError(503, "transient", msg, headers={"Retry-After": "1"})
