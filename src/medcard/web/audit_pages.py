"""Audit pages: "who opened my card" for patients, one's own access history, admin reports.

- ``/me/access-log``: every entry about the signed-in patient's compartment, newest
  first: organisation, role, person, when (Moscow time), purpose, emergency flag.  The
  patient comes from the account, never from a parameter.  The patient's own accesses
  stay in the list, marked "you".
- ``/me/my-access``: what the signed-in person did (actor = their Practitioner or
  Patient reference, or their account).
- ``/admin/audit``: reports by patient, user, organisation and period for holders of
  ``audit:report`` (organisation and region administrators); an organisation's
  administrator sees only entries made for that organisation.  Downloads as AuditEvent
  NDJSON or CSV.  Running a report is itself recorded.

Pages are plain HTML (no JavaScript); lists turn into cards on a phone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine, Row

from medcard import clock
from medcard.access.context import AccessContext
from medcard.access.roles import Permission, has
from medcard.access.roles import Role as AccessRole
from medcard.access.smart import Scopes
from medcard.audit import reports
from medcard.audit.recorder import SUCCESS, AuditBuffer
from medcard.auth import accounts
from medcard.auth.accounts import Account
from medcard.ru_dates import Times
from medcard.web import i18n
from medcard.web.deps import current_account, engine_of
from medcard.web.render import PageRoute, lang_of, page, page_times

router = APIRouter(route_class=PageRoute, include_in_schema=False)

CurrentAccount = Annotated[Account, Depends(current_account)]
PageNo = Annotated[int, Query(alias="page", ge=1, le=1_000_000)]
CSS_PATH = Path(__file__).parent / "templates" / "audit" / "audit.css"

TEXTS: Final[Mapping[str, Mapping[str, str]]] = {
    "ru": {
        "access_log_title": "Кто открывал мою карту",
        "access_log_lead": "Здесь записано каждое обращение к вашей медицинской карте: кто, из какой организации, когда и с какой целью. Записи нельзя изменить или удалить.",
        "access_log_not_linked": "Ваша учётная запись ещё не связана с медицинской картой, поэтому журнал пока пуст.",
        "my_access_title": "Мои обращения к картам",
        "my_access_lead": "Обращения к медицинским картам, сделанные под вашей учётной записью.",
        "report_title": "Журнал доступа: отчёт",
        "report_lead": "Отбор записей журнала по пациенту, пользователю, организации и периоду.",
        "report_scope_org": "Показаны только обращения от имени вашей организации",
        "when": "Когда",
        "organization": "Организация",
        "role": "Роль",
        "person": "Кто",
        "purpose": "Цель",
        "action": "Действие",
        "section": "Раздел карты",
        "patient": "Пациент",
        "user": "Пользователь",
        "outcome": "Результат",
        "you": "вы",
        "app": "Приложение „{name}“",
        "app_yours": "с вашего разрешения",
        "emergency": "Экстренный доступ",
        "emergency_only": "Только экстренный доступ",
        "emergency_summary": "Экстренных обращений к карте: {n}. Врач может открыть карту без направления только в экстренной ситуации, и каждое такое обращение проверяется.",
        "show_emergency": "Показать только их",
        "show_all": "Показать все записи",
        "denied": "отказано",
        "not_stated": "не указана",
        "empty": "Записей нет.",
        "total": "Всего записей: {n}",
        "page_of": "Страница {page} из {pages}",
        "newer": "← Новее",
        "older": "Старее →",
        "since": "С даты",
        "until": "По дату",
        "apply": "Показать",
        "download": "Скачать",
        "download_ndjson": "AuditEvent (NDJSON)",
        "download_csv": "Таблица (CSV)",
        "bad_date": "Дата указана неверно: введите ДД.ММ.ГГГГ, например 01.03.2026.",
        "user_hint": "Логин, Practitioner/… или Account/…",
        "back_home": "На мою страницу",
        "kind_system": "Система",
        "kind_client": "Внешняя программа",
        "kind_unknown": "Неизвестно",
        "kind_lab": "Лаборатория",
        "outcome_0": "выполнено",
        "outcome_4": "отказано",
        "outcome_8": "ошибка",
        "do_read": "просмотр",
        "do_vread": "просмотр версии",
        "do_search": "поиск",
        "do_history": "история изменений",
        "do_everything": "вся карта целиком",
        "do_create": "добавление записи",
        "do_update": "изменение",
        "do_delete": "удаление",
        "do_transaction": "пакет изменений",
        "do_batch": "пакет запросов",
        "do_operation": "операция",
        "do_audit-report": "просмотр журнала доступа",
        "do_audit-export": "выгрузка журнала доступа",
        "do_break-glass": "открыт экстренный доступ",
        "do_login": "вход",
        "do_logout": "выход",
        "do_sso-login": "вход через Госуслуги или региональный портал",
        "do_mfa": "ввод кода подтверждения",
        "do_mfa-enrol": "подключение кода подтверждения",
        "do_mfa-disable": "отключение кода подтверждения",
        "do_lockout": "вход приостановлен",
        "do_password-change": "смена пароля",
        "do_password-reset": "восстановление пароля",
        "do_password-reset-request": "запрос восстановления пароля",
        "do_oauth-authorize": "разрешение доступа приложению",
        "do_oauth-token": "выдача ключа доступа приложению",
        "do_oauth-revoke": "отзыв доступа приложения",
        "do_oauth-introspect": "проверка ключа доступа",
        "purpose_TREAT": "лечение",
        "purpose_ETREAT": "экстренная помощь",
        "purpose_HPAYMT": "оплата медицинской помощи",
        "purpose_HOPERAT": "работа организации",
        "purpose_PATRQT": "по запросу пациента",
        "purpose_PUBHLTH": "общественное здоровье",
        "purpose_HRESCH": "исследование",
        "purpose_CAREMGT": "организация лечения",
        "purpose_COC": "преемственность лечения",
        "purpose_BTG": "экстренный доступ",
        "type_Patient": "личные данные",
        "type_Observation": "наблюдения и анализы",
        "type_Encounter": "приёмы",
        "type_Condition": "диагнозы",
        "type_AllergyIntolerance": "аллергии",
        "type_Immunization": "прививки",
        "type_MedicationRequest": "рецепты",
        "type_DiagnosticReport": "исследования",
        "type_ImagingStudy": "снимки",
        "type_DocumentReference": "документы и справки",
        "type_Composition": "протоколы",
        "type_ServiceRequest": "направления",
        "type_FamilyMemberHistory": "семейный анамнез",
        "type_Procedure": "процедуры",
        "type_Consent": "согласия",
        "type_Coverage": "полис ОМС",
        "type_EpisodeOfCare": "случаи лечения",
        "type_Appointment": "записи на приём",
        "type_CarePlan": "планы лечения",
        "type_Task": "обращения",
        "type_AuditEvent": "журнал доступа",
    },
    "en": {
        "access_log_title": "Who opened my record",
        "access_log_lead": "Every access to your medical record is listed here: who, from which organisation, when and why. Entries cannot be changed or deleted.",
        "access_log_not_linked": "Your account is not linked to a medical record yet, so the log is empty.",
        "my_access_title": "My access to records",
        "my_access_lead": "Accesses to medical records made with your account.",
        "report_title": "Access log report",
        "report_lead": "Select log entries by patient, user, organisation and period.",
        "report_scope_org": "Only accesses made for your organisation are shown",
        "when": "When",
        "organization": "Organisation",
        "role": "Role",
        "person": "Who",
        "purpose": "Purpose",
        "action": "Action",
        "section": "Part of the record",
        "patient": "Patient",
        "user": "User",
        "outcome": "Outcome",
        "you": "you",
        "app": "App “{name}”",
        "app_yours": "with your permission",
        "emergency": "Emergency access",
        "emergency_only": "Emergency access only",
        "emergency_summary": "Emergency accesses to your record: {n}. A doctor may open a record without a care relationship only in an emergency, and every such access is reviewed.",
        "show_emergency": "Show only those",
        "show_all": "Show all entries",
        "denied": "refused",
        "not_stated": "not stated",
        "empty": "No entries.",
        "total": "Entries: {n}",
        "page_of": "Page {page} of {pages}",
        "newer": "← Newer",
        "older": "Older →",
        "since": "From",
        "until": "To",
        "apply": "Show",
        "download": "Download",
        "download_ndjson": "AuditEvent (NDJSON)",
        "download_csv": "Spreadsheet (CSV)",
        "bad_date": "A date is not valid: enter DD.MM.YYYY, e.g. 01.03.2026.",
        "user_hint": "Login, Practitioner/… or Account/…",
        "back_home": "Back to my page",
        "kind_system": "System",
        "kind_client": "External application",
        "kind_unknown": "Unknown",
        "kind_lab": "Laboratory",
        "outcome_0": "done",
        "outcome_4": "refused",
        "outcome_8": "failed",
        "do_read": "viewed",
        "do_vread": "viewed a version",
        "do_search": "searched",
        "do_history": "viewed the history",
        "do_everything": "the whole record",
        "do_create": "added an entry",
        "do_update": "changed",
        "do_delete": "deleted",
        "do_transaction": "batch of changes",
        "do_batch": "batch of requests",
        "do_operation": "operation",
        "do_audit-report": "viewed the access log",
        "do_audit-export": "exported the access log",
        "do_break-glass": "opened emergency access",
        "do_login": "signed in",
        "do_logout": "signed out",
        "do_sso-login": "signed in through Gosuslugi or a regional portal",
        "do_mfa": "entered a sign-in code",
        "do_mfa-enrol": "turned sign-in codes on",
        "do_mfa-disable": "turned sign-in codes off",
        "do_lockout": "sign-in suspended",
        "do_password-change": "changed the password",
        "do_password-reset": "reset the password",
        "do_password-reset-request": "asked for a password reset",
        "do_oauth-authorize": "authorised an application",
        "do_oauth-token": "access key issued to an application",
        "do_oauth-revoke": "application access revoked",
        "do_oauth-introspect": "access key checked",
        "purpose_TREAT": "treatment",
        "purpose_ETREAT": "emergency treatment",
        "purpose_HPAYMT": "payment for care",
        "purpose_HOPERAT": "healthcare operations",
        "purpose_PATRQT": "at the patient's request",
        "purpose_PUBHLTH": "public health",
        "purpose_HRESCH": "research",
        "purpose_CAREMGT": "care management",
        "purpose_COC": "continuity of care",
        "purpose_BTG": "emergency access",
        "type_Patient": "personal details",
        "type_Observation": "observations and lab results",
        "type_Encounter": "visits",
        "type_Condition": "diagnoses",
        "type_AllergyIntolerance": "allergies",
        "type_Immunization": "vaccinations",
        "type_MedicationRequest": "prescriptions",
        "type_DiagnosticReport": "examinations",
        "type_ImagingStudy": "imaging",
        "type_DocumentReference": "documents and certificates",
        "type_Composition": "consultation notes",
        "type_ServiceRequest": "referrals",
        "type_FamilyMemberHistory": "family history",
        "type_Procedure": "procedures",
        "type_Consent": "consents",
        "type_Coverage": "insurance policy",
        "type_EpisodeOfCare": "episodes of care",
        "type_Appointment": "appointments",
        "type_CarePlan": "care plans",
        "type_Task": "requests",
        "type_AuditEvent": "access log",
    },
}


class Texts:
    """This module's texts, then the shared catalogue; ``t(key, n=3)`` fills ``{n}``."""

    def __init__(self, lang: str) -> None:
        self.own = TEXTS.get(lang, TEXTS[i18n.DEFAULT_LANG])
        self.shared = i18n.translator(lang)

    def __call__(self, key: str, **values: object) -> str:
        text = self.own.get(key) or self.shared(key)
        return text.format(**values) if values else text

    def known(self, key: str) -> bool:
        return key in self.own


# -- shaping entries for the templates ---------------------------------------------------


@dataclass(frozen=True)
class EntryView:
    when: str
    iso: str
    organization: str
    role: str
    person: str
    person_detail: str
    you: bool
    action: str
    section: str
    purpose: str
    emergency: bool
    denied: bool
    patient: str
    actor: str
    outcome: str
    app: str = ""  # the registered app (OAuth client) that acted, by name (issue 22)
    app_yours: bool = False  # ...with the reader's own permission (their token)


def _when(us: int, times: Times) -> tuple[str, str]:
    moment = clock.micros_to_datetime(us)
    return times.when(moment), moment.astimezone(times.zone).isoformat(timespec="seconds")


def _purpose(value: str, t: Texts) -> str:
    if not value:
        return ""
    return t(f"purpose_{value}") if t.known(f"purpose_{value}") else value


def _role(kind: str, t: Texts) -> str:
    if t.known(f"kind_{kind}"):
        return t(f"kind_{kind}")
    shown = t(f"role_{kind}")
    return t("kind_unknown") if shown == f"role_{kind}" else shown


def _outcome(code: str, t: Texts) -> str:
    return t(f"outcome_{code}") if t.known(f"outcome_{code}") else code


def entry_views(
    rows: list[Row[Any]],
    directory: reports.Directory,
    t: Texts,
    lang: str,
    *,
    me: frozenset[str] = frozenset(),
    times: Times | None = None,
) -> list[EntryView]:
    """Rows as the pages show them; ``times`` is the page's zone (``render.page_times``)."""
    directory.prefetch(rows)
    times = times or Times(lang=lang)
    out = []
    for row in rows:
        who = directory.person(row.actor)
        # What an app did is the app's doing, even with the patient's own token; the
        # patient's own decision to allow it (oauth-authorize) stays theirs.
        app = "" if row.interaction == "oauth-authorize" else directory.app(row.client_id)
        mine = row.actor in me
        you = mine and not app
        if app and (mine or row.actor.startswith("Client/")):
            person = ""  # the app is named instead
        else:
            person = who.name or ("" if you else row.actor)
        shown, iso = _when(row.recorded, times)
        section = row.resource_type
        if t.known(f"type_{section}"):
            section = t(f"type_{section}")
        interaction = row.interaction
        out.append(
            EntryView(
                when=shown,
                iso=iso,
                organization=directory.organization(row.organization),
                role=_role(who.kind, t),
                person=person,
                person_detail=who.detail,
                you=you,
                action=t(f"do_{interaction}") if t.known(f"do_{interaction}") else interaction,
                section=section,
                purpose=_purpose(row.purpose, t),
                emergency=bool(row.emergency),
                denied=row.outcome != SUCCESS,
                patient=row.patient_id,
                actor=row.actor,
                outcome=_outcome(row.outcome, t),
                app=app,
                app_yours=bool(app) and mine,
            )
        )
    return out


@dataclass(frozen=True)
class Pager:
    page: int
    pages: int
    total: int
    newer: str
    older: str


def page_links(request: Request, page_no: int, total: int) -> Pager:
    pages = max(1, -(-total // reports.PAGE_SIZE))
    params = dict(request.query_params)
    params.pop("lang", None)

    def url(n: int) -> str:
        return f"{request.url.path}?{urlencode({**params, 'page': str(n)})}"

    return Pager(
        page_no,
        pages,
        total,
        url(page_no - 1) if page_no > 1 else "",
        url(page_no + 1) if page_no < pages else "",
    )


def _record(engine: Engine, account: Account, interaction: str, patient: str, detail: str) -> None:
    buffer = AuditBuffer(AccessContext(account.actor, Scopes(()), client_id="web"))
    buffer.add(
        interaction,
        "AuditEvent",
        patient_id=patient,
        detail=detail,
        organization=account.organization_ref,
    )
    buffer.flush_separately(engine)


def own_refs(account: Account) -> frozenset[str]:
    return frozenset({account.actor, *([account.fhir_ref] if account.fhir_ref else [])})


# -- pages -------------------------------------------------------------------------------


@router.get("/audit/audit.css")
def stylesheet() -> Response:
    return Response(
        CSS_PATH.read_bytes(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/me/access-log")
def access_log(
    request: Request,
    account: CurrentAccount,
    page_no: PageNo = 1,
    emergency: bool = False,
) -> Response:
    """Who opened my card.  Deliberately takes no patient parameter."""
    if account.role is not accounts.Role.PATIENT:
        raise HTTPException(403)
    engine, lang = engine_of(request), lang_of(request)
    t = Texts(lang)
    patient_id = (
        account.fhir_ref.split("/", 1)[1] if account.fhir_ref.startswith("Patient/") else ""
    )
    times = page_times(request, account, patient_id)
    views: list[EntryView] = []
    emergencies, pager = 0, page_links(request, 1, 0)
    if patient_id:
        mine = frozenset({patient_id})
        flt = reports.AuditFilter(patient_ids=mine, emergency_only=emergency)
        total = reports.count(engine, flt)
        emergencies = reports.count(
            engine, reports.AuditFilter(patient_ids=mine, emergency_only=True)
        )
        rows = reports.page(
            engine, flt, limit=reports.PAGE_SIZE, offset=(page_no - 1) * reports.PAGE_SIZE
        )
        views = entry_views(
            rows, reports.Directory(engine), t, lang, me=own_refs(account), times=times
        )
        pager = page_links(request, page_no, total)
    return page(
        request,
        "audit/access_log.html",
        t=t,
        times=times,
        linked=bool(patient_id),
        entries=views,
        pager=pager,
        emergencies=emergencies,
        emergency_only=emergency,
    )


@router.get("/me/my-access")
def my_access(request: Request, account: CurrentAccount, page_no: PageNo = 1) -> Response:
    """What I opened: entries whose actor is me (my FHIR reference or my account)."""
    engine, lang = engine_of(request), lang_of(request)
    t = Texts(lang)
    flt = reports.AuditFilter(actors=own_refs(account))
    total = reports.count(engine, flt)
    rows = reports.page(
        engine, flt, limit=reports.PAGE_SIZE, offset=(page_no - 1) * reports.PAGE_SIZE
    )
    times = page_times(request, account)
    views = entry_views(rows, reports.Directory(engine), t, lang, me=own_refs(account), times=times)
    return page(
        request,
        "audit/my_access.html",
        t=t,
        times=times,
        entries=views,
        pager=page_links(request, page_no, total),
    )


# -- administrators' reports ---------------------------------------------------------------


@dataclass(frozen=True)
class ReportForm:
    patient: str = ""
    user: str = ""
    organization: str = ""
    since: str = ""
    until: str = ""
    emergency: bool = False

    def query(self) -> str:
        params = {k: v for k, v in vars(self).items() if v and k != "emergency"}
        if self.emergency:
            params["emergency"] = "1"
        return urlencode(params)

    @property
    def filtered(self) -> bool:
        return any(vars(self).values())

    def describe(self) -> str:
        return " ".join(f"{k}={v}" for k, v in vars(self).items() if v) or "all"


def _report_form(
    patient: str = "",
    user: str = "",
    organization: str = "",
    since: str = "",
    until: str = "",
    emergency: bool = False,
) -> ReportForm:
    return ReportForm(
        patient.strip()[:100],
        user.strip()[:255],
        organization.strip()[:128],
        since.strip()[:10],
        until.strip()[:10],
        emergency,
    )


Form = Annotated[ReportForm, Depends(_report_form)]


def _require_reporter(account: Account) -> None:
    try:
        role = AccessRole(account.role.value)
    except ValueError:
        raise HTTPException(403) from None
    if not has(role, Permission.AUDIT_REPORT):
        raise HTTPException(403)


def _actors(engine: Engine, user: str) -> frozenset[str]:
    """A user typed as an actor reference, or as a login: their account and FHIR reference."""
    if not user:
        return frozenset()
    if "/" in user or user.startswith("system:"):
        found = accounts.get(engine, user.split("/", 1)[1]) if user.startswith("Account/") else None
        return own_refs(found) if found else frozenset({user})
    found = accounts.get_by_login(engine, user)
    return own_refs(found) if found else frozenset({user})


def _report_times(request: Request, account: Account, form: ReportForm) -> Times:
    """A report on one patient is in that patient's zone; any other, in the reader's."""
    return page_times(request, account, form.patient.removeprefix("Patient/"))


def _report_filter(
    engine: Engine, account: Account, form: ReportForm, times: Times
) -> reports.AuditFilter:
    """The reader's filter, within what the reader's role allows.  ValueError: bad date.

    The period's days are days in the report's zone, the zone its times are shown in."""
    low, high = reports.period(form.since, form.until, times.zone)
    limited = account.role is accounts.Role.ORG_ADMIN
    return reports.AuditFilter(
        patient_ids=frozenset({form.patient.removeprefix("Patient/")})
        if form.patient
        else frozenset(),
        actors=_actors(engine, form.user),
        organization=form.organization,
        within_organization=account.organization_ref if limited else None,
        since=low,
        until=high,
        emergency_only=form.emergency,
    )


@router.get("/admin/audit")
def report(request: Request, account: CurrentAccount, form: Form, page_no: PageNo = 1) -> Response:
    _require_reporter(account)
    engine, lang = engine_of(request), lang_of(request)
    t = Texts(lang)
    times = _report_times(request, account, form)
    try:
        flt = _report_filter(engine, account, form, times)
    except ValueError:
        return page(
            request,
            "audit/report.html",
            400,
            t=t,
            times=times,
            form=form,
            bad_date=True,
            entries=[],
            pager=page_links(request, 1, 0),
            scope_org="",
            query="",
        )
    total = reports.count(engine, flt)
    rows = reports.page(
        engine, flt, limit=reports.PAGE_SIZE, offset=(page_no - 1) * reports.PAGE_SIZE
    )
    directory = reports.Directory(engine)
    views = entry_views(rows, directory, t, lang, me=own_refs(account), times=times)
    _record(engine, account, "audit-report", _patient_of(flt), f"report {form.describe()}")
    scope_org = ""
    if account.role is accounts.Role.ORG_ADMIN:
        scope_org = directory.organization(account.organization_ref) or "—"
    return page(
        request,
        "audit/report.html",
        t=t,
        times=times,
        form=form,
        bad_date=False,
        entries=views,
        pager=page_links(request, page_no, total),
        scope_org=scope_org,
        query=form.query(),
    )


def _patient_of(flt: reports.AuditFilter) -> str:
    return next(iter(flt.patient_ids)) if len(flt.patient_ids) == 1 else ""


@router.get("/admin/audit/export")
def report_export(
    request: Request,
    account: CurrentAccount,
    form: Form,
    fmt: Annotated[str, Query(alias="format", pattern="^(ndjson|csv)$")] = "ndjson",
) -> Response:
    _require_reporter(account)
    engine = engine_of(request)
    times = _report_times(request, account, form)
    try:
        flt = _report_filter(engine, account, form, times)
    except ValueError:
        raise HTTPException(400) from None
    _record(engine, account, "audit-export", _patient_of(flt), f"{fmt} {form.describe()}")
    stamp = datetime.now(times.zone).strftime("%Y%m%d-%H%M")
    rows = reports.stream(engine, flt)
    body: Iterator[bytes]
    if fmt == "csv":
        body = _with_bom(reports.csv_lines(rows))
        media = "text/csv; charset=utf-8"
    else:
        body = reports.ndjson_lines(rows)
        media = "application/fhir+ndjson"
    return StreamingResponse(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.{fmt}"'},
    )


def _with_bom(lines: Iterator[bytes]) -> Iterator[bytes]:
    """Spreadsheet programs read UTF-8 CSV (Cyrillic names) correctly only with a BOM."""
    yield b"\xef\xbb\xbf"
    yield from lines
