"""Validation of every resource written: structure, required bindings, Russian identifiers.

Structure comes from the fhir.resources R4B pydantic models (there is no plain R4
set); those models do not check required value-set bindings (they accept
``status: "bogus"``), so the bindings compiled from the R4 StructureDefinitions are
checked here too.  R4-only types that R4B dropped are checked for bindings only.
"""

from __future__ import annotations

import decimal
import types
import typing
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
    nul = _nul_at(resource, rtype)
    if nul is not None:  # R4 datatypes.html#string; PostgreSQL cannot store NUL in text either
        raise bad_request(f"{nul}: strings cannot contain the NUL character", nul)
    issues: list[Issue] = []
    model = _model(rtype)
    if model is not None:
        try:
            issues = _structure(model, resource, rtype)
        except KeyError as exc:
            # fhir.resources looks nested resources (Bundle.entry.resource, contained) up
            # by their resourceType and raises KeyError for an unknown one (found by the
            # reliability fuzzer: a 500 instead of a 400).
            raise bad_request(
                f"{rtype} holds a resource of unknown type ({str(exc)[:80]})", rtype
            ) from None
        seen = {i.expression for i in issues}
        issues += [i for i in _check_json_types(model, resource, rtype) if i.expression not in seen]
    issues = [*issues, *_check_bindings(rtype, resource)][:MAX_ISSUES]
    if issues:
        raise FhirError(
            400, issues[0].code, issues[0].diagnostics, issues[0].expression, issues[1:]
        )
    if rtype == "Patient":
        return _check_patient_identifiers(resource)
    return []


def _structure(model: Any, node: dict[str, Any], where: str) -> list[Issue]:
    """What the model says of ``node``, with primitive extensions inside extensions allowed.

    R4 json.html#primitive: any primitive may carry ``_name`` with its id and extensions,
    an extension's ``value[x]`` too (``extension[0]._valueCode``), but the R4B models
    have no such fields on Extension.  Only when the model refuses, those ``_value[x]``
    are taken out, the rest is validated again and each of them is validated as the
    Element it is.
    """
    try:
        model.model_validate(node)
        return []
    except ValidationError as exc:
        first = exc
    pieces: list[tuple[str, Any]] = []
    pruned = _without_extension_primitives(node, where, pieces)
    if not pieces:
        return _issues(first, where)
    try:
        model.model_validate(pruned)
        issues: list[Issue] = []
    except ValidationError as exc:
        issues = _issues(exc, where)
    element = _model("Element")
    for at, value in pieces:
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            here = at + (f"[{i}]" if isinstance(value, list) else "")
            if item is None and isinstance(value, list):
                continue  # a list's primitive without extensions (json.html#primitive)
            if not isinstance(item, dict):
                issues.append(Issue("error", "structure", f"{here}: must be an object", (here,)))
            else:
                issues += _structure(element, item, here)
    return issues[:MAX_ISSUES]


def _issues(exc: ValidationError, where: str) -> list[Issue]:
    out = []
    for err in exc.errors()[:MAX_ISSUES]:
        at = ".".join([where, *(str(p) for p in err["loc"])])
        out.append(Issue("error", "structure", f"{at}: {err['msg']}", (at,)))
    return out


_EXTENSION_LISTS = ("extension", "modifierExtension")


@cache
def _extension_primitives() -> frozenset[str]:
    """``_valueString``, ``_valueCode``, ...: the primitive choices of Extension.value[x]."""
    fields = _field_types(_model("Extension"))
    return frozenset(
        f"_{name}"
        for name, kind in fields.items()
        if name.startswith("value") and not hasattr(kind, "model_fields")
    )


def _without_extension_primitives(node: Any, where: str, out: list[tuple[str, Any]]) -> Any:
    """A copy of ``node`` without the ``_value[x]`` of its extensions (collected in out)."""
    if isinstance(node, list):
        return [_without_extension_primitives(v, f"{where}[{i}]", out) for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    copy: dict[str, Any] = {}
    for key, value in node.items():
        if key in _EXTENSION_LISTS and isinstance(value, list):
            items = []
            for i, ext in enumerate(value):
                at = f"{where}.{key}[{i}]"
                kept = ext
                if isinstance(ext, dict):
                    for name in _extension_primitives().intersection(ext):
                        out.append((f"{at}.{name}", ext[name]))
                    kept = {k: v for k, v in ext.items() if k not in _extension_primitives()}
                items.append(_without_extension_primitives(kept, at, out))
            copy[key] = items
        else:
            copy[key] = _without_extension_primitives(value, f"{where}.{key}", out)
    return copy


# FHIR JSON (R4 json.html 2.6.2): booleans are true/false and numbers are numbers, never
# strings.  The pydantic models coerce ("yes" becomes True, "1.5" a Decimal), and the store
# keeps the JSON as sent, so such values would be stored and served as invalid FHIR.
_JSON_KINDS: dict[type, tuple[tuple[type, ...], str]] = {
    bool: ((bool,), "a JSON boolean"),
    int: ((int,), "a JSON integer"),
    decimal.Decimal: ((int, float, decimal.Decimal), "a JSON number"),
}


def _base_type(annotation: Any) -> Any:
    """bool from ``Optional[List[Annotated[bool, ...]]]``; the model class of an element type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType, list):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return None
            annotation = args[0]
        else:
            break
    if isinstance(annotation, type) and hasattr(annotation, "get_model_klass"):
        return annotation.get_model_klass()
    return annotation


@cache
def _field_types(model: Any) -> dict[str, Any]:
    return {f.alias or name: _base_type(f.annotation) for name, f in model.model_fields.items()}


def _check_json_types(model: Any, node: dict[str, Any], where: str) -> list[Issue]:
    issues: list[Issue] = []
    fields = _field_types(model)
    for key, value in node.items():
        kind = fields.get(key)
        if kind is None:
            continue
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            at = f"{where}.{key}" + (f"[{i}]" if isinstance(value, list) else "")
            if kind in _JSON_KINDS:
                allowed, what = _JSON_KINDS[kind]
                # JSON true/false are Python bools, which are ints too: keep them apart
                right = isinstance(item, allowed) and isinstance(item, bool) == (kind is bool)
                if item is not None and not right:
                    issues.append(
                        Issue("error", "structure", f"{at}: must be {what}, not {item!r}", (at,))
                    )
            elif isinstance(item, dict) and hasattr(kind, "model_fields"):
                inner = (
                    _model(item["resourceType"])
                    if isinstance(item.get("resourceType"), str)
                    else None
                )
                issues += _check_json_types(inner or kind, item, at)
    return issues


def _nul_at(node: Any, where: str) -> str | None:
    """The path of the first string (or key) holding U+0000, if any."""
    if isinstance(node, str):
        return where if "\x00" in node else None
    if isinstance(node, dict):
        for key, value in node.items():
            found = where if "\x00" in key else _nul_at(value, f"{where}.{key}")
            if found is not None:
                return found
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found = _nul_at(item, f"{where}[{i}]")
            if found is not None:
                return found
    return None


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
