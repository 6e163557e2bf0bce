"""Validation of every resource written: structure, required bindings, Russian identifiers.

Structure comes from the fhir.resources R4B pydantic models (there is no plain R4
set); those models do not check required value-set bindings (they accept
``status: "bogus"``), so the bindings compiled from the R4 StructureDefinitions are
checked here too.  R4-only types that R4B dropped are checked for bindings only.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import ValidationError

from medcard import identifiers
from medcard.fhir import spec
from medcard.fhir.outcomes import FhirError, Issue, bad_request, unprocessable

MAX_ISSUES = 20


@cache
def _model(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (ValueError, KeyError):
        return None


def check_resource_type(resource: Any, expected: str | None = None) -> str:
    if not isinstance(resource, dict):
        raise bad_request("The body must be a JSON object holding a FHIR resource")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        raise bad_request("The resource has no resourceType", "resourceType")
    if rtype not in spec.resource_types():
        raise FhirError(
            400, "not-supported", f"Unknown resource type '{rtype}' (not a FHIR R4 resource)"
        )
    if expected is not None and rtype != expected:
        raise bad_request(
            f"resourceType '{rtype}' does not match the type in the URL '{expected}'",
            "resourceType",
        )
    return rtype


def validate(resource: dict[str, Any]) -> list[Issue]:
    """Raise FhirError for an invalid resource; return warnings for a valid one."""
    rtype = check_resource_type(resource)
    issues: list[Issue] = []
    model = _model(rtype)
    if model is not None:
        try:
            model.model_validate(resource)
        except ValidationError as exc:
            for err in exc.errors()[:MAX_ISSUES]:
                where = ".".join(str(p) for p in err["loc"])
                issues.append(
                    Issue(
                        "error",
                        "structure",
                        f"{rtype}.{where}: {err['msg']}",
                        (f"{rtype}.{where}",),
                    )
                )
    issues += _check_bindings(rtype, resource)
    if issues:
        raise FhirError(
            400, issues[0].code, issues[0].diagnostics, issues[0].expression, issues[1:]
        )
    if rtype == "Patient":
        return _check_patient_identifiers(resource)
    return []


def _values(node: Any, parts: list[str]) -> list[Any]:
    nodes = [node]
    for part in parts:
        nxt: list[Any] = []
        for n in nodes:
            if isinstance(n, dict) and part in n:
                v = n[part]
                nxt.extend(v if isinstance(v, list) else [v])
        nodes = nxt
    return nodes


def _check_bindings(rtype: str, resource: dict[str, Any]) -> list[Issue]:
    issues = []
    for path, allowed in spec.required_bindings().get(rtype, {}).items():
        for value in _values(resource, path.split(".")):
            if isinstance(value, str) and value not in allowed:
                shown = ", ".join(sorted(allowed)[:12])
                issues.append(
                    Issue(
                        "error",
                        "code-invalid",
                        f"{rtype}.{path}: '{value}' is not in the required value set ({shown})",
                        (f"{rtype}.{path}",),
                    )
                )
    return issues


def _check_patient_identifiers(patient: dict[str, Any]) -> list[Issue]:
    warnings: list[Issue] = []
    for i, ident in enumerate(patient.get("identifier", [])):
        system, value = ident.get("system"), ident.get("value")
        where = f"Patient.identifier[{i}].value"
        if not isinstance(value, str):
            continue
        if system == identifiers.SNILS_SYSTEM:
            try:
                identifiers.validate_snils(value)
            except identifiers.IdentifierError as exc:
                raise unprocessable(f"Invalid SNILS '{value}': {exc}", where) from exc
        elif system == identifiers.ENP_SYSTEM:
            try:
                identifiers.validate_enp_format(value)
            except identifiers.IdentifierError as exc:
                raise unprocessable(
                    f"Invalid OMS policy number (ENP) '{value}': {exc}", where
                ) from exc
            if not identifiers.enp_checksum_ok(value):
                warnings.append(
                    Issue(
                        "warning",
                        "business-rule",
                        f"OMS policy number (ENP) '{value}' fails its check digit; stored as given",
                        (where,),
                    )
                )
    return warnings
