"""The well-being diary pages: ``/card/{pid}/diary`` (entry form, charts, flags),
``/card/{pid}/diary/import`` (home-monitor CSV), ``/card/{pid}/diary/targets`` (the
physician's personal targets) and ``/diary/alerts`` (the physician's list of readings
far out of range).  Everything goes through ``page_repository``: the gate decides
whose diary a person may open, the store tags what a patient enters.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from medcard import clock
from medcard.access.roles import Role
from medcard.auth.accounts import Account
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import Repository
from medcard.monitoring import hooks as monitoring_hooks
from medcard.monitoring.acceptance import AcceptError, accept_reading, accepted_readings
from medcard.monitoring.charts import render
from medcard.monitoring.csv_import import MAX_BYTES, MEASURES, CsvFormatError, import_csv
from medcard.monitoring.diary import (
    alerts,
    flagged,
    latest_height,
    load_points,
    period_start,
    save_readings,
    with_bmi,
)
from medcard.monitoring.metrics import CHARTS, METRIC
from medcard.monitoring.readings import Reading, ReadingError, checked
from medcard.monitoring.targets import TargetError, set_target, targets_for
from medcard.regions.features import Feature
from medcard.regions.gate import FeatureDisabledError, PatientRegion, require_feature
from medcard.regions.zone import times_of
from medcard.ru_dates import Times
from medcard.web.deps import current_account, engine_of, page_repository, require_csrf
from medcard.web.regions import feature_off_page
from medcard.web.render import PageRoute, error_page, lang_of, page, redirect

monitoring_hooks.install()

router = APIRouter(route_class=PageRoute, include_in_schema=False)
CurrentAccount = Annotated[Account, Depends(current_account)]

PERIODS = ("day", "week", "month")
FORM_FIELDS = MEASURES  # the form asks for what a home-monitor CSV may hold
READINGS_SHOWN = 30  # the newest readings of the period, listed under the charts
TARGET_METRICS = (
    "systolic",
    "diastolic",
    "pulse",
    "glucose",
    "temperature",
    "spo2",
    "bmi",
    "sleep",
)


def patient_name(patient: dict[str, Any]) -> str:
    for name in patient.get("name") or []:
        text = name.get("text") or " ".join([name.get("family", ""), *name.get("given", [])])
        if text.strip():
            return str(text).strip()
    return str(patient.get("id", ""))


def _open(
    request: Request, repo: Repository, pid: str, feature: Feature
) -> tuple[dict[str, Any], PatientRegion]:
    """The patient (404 if the gate hides them) and their region (403 if the feature is off)."""
    patient = repo.read("Patient", pid).json()
    return patient, require_feature(engine_of(request), pid, feature)


def _fail(request: Request, exc: FhirError) -> Response:
    if isinstance(exc, FeatureDisabledError):
        return feature_off_page(request, exc, exc.feature)
    if exc.status == 404:
        return error_page(request, 404, "not_found")
    if exc.status == 403:
        return page(request, "diary/refused.html", 403, reason=exc.diagnostics)
    return page(request, "diary/refused.html", exc.status, reason=exc.diagnostics)


def _float(text: str) -> float | None:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _local_now(zone: ZoneInfo) -> str:
    return clock.now().astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _view(
    request: Request,
    account: Account,
    pid: str,
    period: str,
    *,
    notice: str = "",
    errors: list[ReadingError] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    lang = lang_of(request)
    period = period if period in PERIODS else "week"
    with page_repository(request, account, "diary") as repo:
        try:
            patient, region = _open(request, repo, pid, Feature.DIARY)
            zone = ZoneInfo(region.time_zone)
            now = clock.now()
            start = period_start(period, now)
            points = load_points(repo, pid, start)
            targets = targets_for(repo, pid)
            accepted = accepted_readings(repo, pid)
        except FhirError as exc:
            return _fail(request, exc)
    # A clinician's copy of an accepted reading is the same measurement: charted once.
    copies = {a.observation_id for a in accepted.values()}
    points = [p for p in points if p.id not in copies]
    readings = [
        (p, p.when.astimezone(zone), accepted.get(p.id))
        for p in sorted(points, key=lambda p: p.when, reverse=True)[:READINGS_SHOWN]
    ]
    charts = []
    for key in CHARTS:
        if any(p.metric == key for p in points):
            title = METRIC[key].title(lang) if key in METRIC else ""
            charts.append((title, render(key, points, targets, start, now, period, zone, lang)))
    shown_targets = [(METRIC[k], targets[k]) for k in TARGET_METRICS]
    return page(
        request,
        "diary/diary.html",
        status,
        times=Times(zone, lang, "patient"),
        pid=pid,
        patient_name=patient_name(patient),
        period=period,
        periods=PERIODS,
        charts=charts,
        flagged=[(p, side, p.when.astimezone(zone)) for p, side in flagged(points, targets)],
        targets=shown_targets,
        readings=readings,
        zone=zone,
        metrics=METRIC,
        is_patient=account.role == Role.PATIENT,
        is_clinician=account.role == Role.PRACTITIONER,
        family_on=region.enabled(Feature.FAMILY_HISTORY),
        now_local=_local_now(zone),
        notice=notice,
        errors=errors or [],
        values=values or {},
        count=len(points),
    )


@router.get("/card/{pid}/diary")
def diary_page(
    request: Request, pid: str, account: CurrentAccount, period: str = "week", notice: str = ""
) -> Response:
    known = {
        "saved": "diary_saved",
        "duplicate": "diary_duplicate",
        "target": "diary_target_saved",
        "accepted": "diary_accepted",
    }
    return _view(request, account, pid, period, notice=known.get(notice, ""))


def _form_readings(
    form: dict[str, str], zone: ZoneInfo
) -> tuple[list[Reading], list[ReadingError], float | None]:
    errors: list[ReadingError] = []
    try:
        when = (
            datetime.fromisoformat(form.get("when", "").strip())
            if form.get("when", "").strip()
            else clock.now()
        )
    except ValueError:
        return [], [ReadingError("reading_bad_time", "cannot read the time")], None
    when = when if when.tzinfo else when.replace(tzinfo=zone)
    nums = {k: _float(form.get(k, "")) for k in FORM_FIELDS}
    readings: list[Reading] = []
    note = form.get("note", "").strip()
    s, d = nums.pop("systolic"), nums.pop("diastolic")
    if s is not None or d is not None:
        if s is None or d is None:
            errors.append(ReadingError("reading_bp_half", "both values are needed"))
        else:
            readings.append(Reading("bp", when, s, d, note=note))
    height = nums.pop("height")
    units = {"glucose": form.get("glucose_unit", "mmol/L"), "temperature": "Cel"}
    for key, value in nums.items():
        if value is not None:
            readings.append(
                Reading(
                    key,
                    when,
                    value,
                    unit=units.get(key, ""),
                    note=note if key == "wellbeing" else "",
                )
            )
    if height is not None:
        readings.append(Reading("height", when, height))
    good = []
    for r in readings:
        try:
            good.append(checked(r))
        except ReadingError as exc:
            errors.append(exc)
    if not readings and not errors:
        errors.append(ReadingError("reading_no_value", "nothing entered"))
    h = next((r.value for r in good if r.metric == "height"), None)
    return good, errors, h


@router.post("/card/{pid}/diary", dependencies=[Depends(require_csrf)])
async def diary_submit(request: Request, pid: str, account: CurrentAccount) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    return await _run(_save_form, request, account, pid, form)


async def _run(fn: Any, *args: Any) -> Response:
    result: Response = await run_in_threadpool(fn, *args)
    return result


def _save_form(request: Request, account: Account, pid: str, form: dict[str, str]) -> Response:
    if account.role != Role.PATIENT:
        raise HTTPException(403)
    with page_repository(request, account, "diary") as repo:
        try:
            _patient, region = _open(request, repo, pid, Feature.DIARY)
            readings, errors, height = _form_readings(form, ZoneInfo(region.time_zone))
            if errors:
                return _view(request, account, pid, "week", errors=errors, values=form, status=400)
            height = height or latest_height(repo, pid)
            statuses = save_readings(repo, pid, with_bmi(readings, height))
        except ReadingError as exc:
            return _view(request, account, pid, "week", errors=[exc], values=form, status=400)
        except FhirError as exc:
            return _fail(request, exc)
    notice = "saved" if "created" in statuses else "duplicate"
    return redirect(f"/card/{pid}/diary?notice={notice}")


@router.get("/card/{pid}/diary/import")
def import_form(request: Request, pid: str, account: CurrentAccount) -> Response:
    with page_repository(request, account, "diary") as repo:
        try:
            _open(request, repo, pid, Feature.DIARY)
        except FhirError as exc:
            return _fail(request, exc)
    return page(
        request, "diary/import.html", pid=pid, report=None, error="", max_kib=MAX_BYTES // 1024
    )


@router.post("/card/{pid}/diary/import", dependencies=[Depends(require_csrf)])
async def import_submit(request: Request, pid: str, account: CurrentAccount) -> Response:
    form = await request.form()
    upload = form.get("file")
    data = b""
    if isinstance(upload, UploadFile):
        data = await upload.read(MAX_BYTES + 1)
        await upload.close()
    device = str(form.get("device", "")).strip()[:100] or "csv"
    return await _run(_import, request, account, pid, data, device)


def _import(request: Request, account: Account, pid: str, data: bytes, device: str) -> Response:
    if account.role != Role.PATIENT:
        raise HTTPException(403)
    with page_repository(request, account, "diary import") as repo:
        try:
            _patient, region = _open(request, repo, pid, Feature.DIARY)
            report = import_csv(
                repo,
                pid,
                data,
                zone=ZoneInfo(region.time_zone),
                device=device,
                height_cm=latest_height(repo, pid),
            )
        except CsvFormatError as exc:
            return page(
                request,
                "diary/import.html",
                400,
                pid=pid,
                report=None,
                error=exc.key,
                max_kib=MAX_BYTES // 1024,
            )
        except FhirError as exc:
            return _fail(request, exc)
    return page(
        request, "diary/import.html", pid=pid, report=report, error="", max_kib=MAX_BYTES // 1024
    )


@router.post("/card/{pid}/diary/targets", dependencies=[Depends(require_csrf)])
async def targets_submit(request: Request, pid: str, account: CurrentAccount) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    return await _run(_set_targets, request, account, pid, form)


def _set_targets(request: Request, account: Account, pid: str, form: dict[str, str]) -> Response:
    if account.role != Role.PRACTITIONER:
        raise HTTPException(403)
    metric = form.get("metric", "")
    if metric not in TARGET_METRICS:
        return _view(
            request,
            account,
            pid,
            "week",
            errors=[ReadingError("target_bad_metric", "")],
            status=400,
        )
    low, high = _float(form.get("low", "")), _float(form.get("high", ""))
    with page_repository(request, account, "diary targets") as repo:
        try:
            _open(request, repo, pid, Feature.DIARY)
            if any(v is not None and math.isnan(v) for v in (low, high)):
                raise TargetError("target_not_number")
            set_target(repo, pid, metric, low, high, clock.now().date())
        except TargetError as exc:
            return _view(
                request, account, pid, "week", errors=[ReadingError(exc.key, "")], status=400
            )
        except FhirError as exc:
            return _fail(request, exc)
    return redirect(f"/card/{pid}/diary?notice=target")


@router.post("/card/{pid}/diary/{reading_id}/accept", dependencies=[Depends(require_csrf)])
def accept_submit(request: Request, pid: str, reading_id: str, account: CurrentAccount) -> Response:
    """«Принять в карту»: the clinician takes a patient's reading into the record."""
    if account.role != Role.PRACTITIONER:
        raise HTTPException(403)
    with page_repository(request, account, "diary acceptance") as repo:
        try:
            _open(request, repo, pid, Feature.DIARY)
            accept_reading(
                repo, pid, reading_id, account.fhir_ref, account.display_name, clock.now()
            )
        except AcceptError as exc:
            return _view(
                request, account, pid, "week", errors=[ReadingError(exc.key, "")], status=400
            )
        except FhirError as exc:
            return _fail(request, exc)
    return redirect(f"/card/{pid}/diary?notice=accepted")


@router.get("/diary/alerts")
def alerts_page(request: Request, account: CurrentAccount, days: int = 14) -> Response:
    if account.role != Role.PRACTITIONER:
        raise HTTPException(403)
    days = max(1, min(days, 90))
    since = clock.now() - timedelta(days=days)
    with page_repository(request, account, "diary alerts") as repo:
        found = alerts(repo, since)
        names: dict[str, str] = {}
        ids = sorted({a.patient_id for a in found})
        if ids:
            req = parse("Patient", [("_id", ",".join(ids)), ("_count", str(len(ids)))])
            names = {s.id: patient_name(s.json()) for s in repo.search(req).matches}
    # each reading in its patient's zone, the zone named (patients may be in different regions)
    engine, lang = engine_of(request), lang_of(request)
    zones: dict[str, Times] = {}
    for pid in {a.patient_id for a in found}:
        zones[pid] = times_of(engine, lang, patient_id=pid)
    rows = [
        (a, names.get(a.patient_id, a.patient_id), zones[a.patient_id].when(a.point.when))
        for a in found
    ]
    return page(request, "diary/alerts.html", rows=rows, days=days, metrics=METRIC)
