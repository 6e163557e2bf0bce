"""The diary's rules on the FHIR write path: what a patient reports must be possible,
and a reading already stored is not stored again.

Registered into ``medcard.fhir.hooks`` by ``install()``.  A patient-entered
Observation with a diary code (blood pressure, pulse, glucose, ...) from an app, a
page or an import is refused with 422 and the reason when its value is impossible, its
unit is not one the diary accepts, or its time lies in the future.

Retries: an app holding ``patient/Observation.cs`` sends ``If-None-Exist:
identifier=...`` and gets the stored reading back (200).  One holding only
``patient/Observation.c`` may not search, so conditional create is closed to it; its
retried reading (same identifier, same patient) is refused with 409 instead of being
stored twice.  The duplicate check reads with a system context without writing an
audit entry: it discloses nothing but "already stored" to the patient's own app.
"""

from __future__ import annotations

from medcard.access.context import AccessContext
from medcard.access.policy import entered_by_patient
from medcard.fhir import hooks
from medcard.fhir.outcomes import conflict, unprocessable
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from medcard.monitoring.readings import ReadingError, check_observation, is_bp, metric_of

_CTX = AccessContext.system("system:diary", purpose="duplicate reading check")


def check_reading(event: hooks.WriteEvent) -> None:
    res = event.resource
    if res.get("resourceType") != "Observation" or not entered_by_patient(res):
        return
    try:
        check_observation(res)
    except ReadingError as exc:
        raise unprocessable(f"Reading refused: {exc.message}", "Observation") from None
    if event.interaction == "create" and event.patient_id and (is_bp(res) or metric_of(res)):
        _refuse_duplicate(event)


def _refuse_duplicate(event: hooks.WriteEvent) -> None:
    for ident in event.resource.get("identifier") or []:
        system, value = ident.get("system"), ident.get("value")
        if not (isinstance(system, str) and isinstance(value, str) and system and value):
            continue
        req = parse(
            "Observation",
            [("patient", event.patient_id), ("identifier", f"{system}|{value}"), ("_count", "1")],
        )
        # not closed on purpose: see the module docstring
        found = Repository(event.engine, _CTX).search(req).matches
        if found:
            raise conflict(
                f"Duplicate reading: identifier {system}|{value} is already stored "
                f"as Observation/{found[0].id}"
            )


def install() -> None:
    hooks.register("monitoring.plausibility", check_reading)
