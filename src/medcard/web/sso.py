"""National SSO pages: «Войти через Госуслуги» (the protocol is in ``auth/sso.py``).

::

    GET /auth/sso                     a button per configured region
    GET /auth/sso/{region}/login      → the provider (state, nonce, PKCE verifier in a
                                        signed cookie bound to this browser)
    GET /auth/sso/{region}/callback   code → ID token → SNILS → the card → a session → the card;
                                        anything else → the result page
    GET /auth/sso/{region}/result     what happened and what to do (reloadable, ?lang=en)

The callback always answers with a redirect, so reloading the page that follows, or
switching its language, never presents the used code again.  Every callback appends
one audit entry (``sso-login``): success, failure or denial.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from medcard.audit.recorder import DENIED, FAILED, SUCCESS
from medcard.auth.sessions import set_session_cookie
from medcard.auth.sso import (
    DENIALS,
    PROVIDER_FAILURES,
    ConsumedStates,
    CookieSeal,
    Failure,
    Identity,
    OidcProvider,
    Outcome,
    SsoError,
    derive_state_secret,
    find_patients,
    mask_snils,
    patient_account,
    record,
    state_matches,
)
from medcard.onboarding import card_gate
from medcard.regions.config import get_region, list_regions
from medcard.regions.features import Feature
from medcard.regions.gate import PatientRegion
from medcard.web.deps import (
    client_ip,
    engine_of,
    fresh_session,
    is_https,
    services,
    settings_of,
)
from medcard.web.homes import landing
from medcard.web.regions import feature_off_page
from medcard.web.render import PageRoute, error_page, lang_of, page, redirect, templates

log = logging.getLogger("medcard.sso")
router = APIRouter(prefix="/auth/sso", route_class=PageRoute, include_in_schema=False)

LOGIN_COOKIE: Final = "medcard_sso"
OUTCOME_COOKIE: Final = "medcard_sso_result"
COOKIE_PATH: Final = "/auth/sso/"

# The result page's status: a card not found is a path forward, not an error.
STATUS: Final[dict[Failure, int]] = {
    Failure.NO_CARD: 200,
    Failure.DUPLICATE_CARDS: 409,
    Failure.ACCESS_DENIED: 403,
    Failure.ACCOUNT_INACTIVE: 403,
    Failure.BAD_STATE: 400,
    Failure.REPLAYED: 400,
    Failure.NO_SNILS: 422,
    Failure.BAD_SNILS: 422,
    Failure.CODE_REFUSED: 502,
    Failure.ID_TOKEN_INVALID: 502,
    Failure.PROVIDER_ERROR: 502,
    Failure.PROVIDER_UNAVAILABLE: 503,
    Failure.UNKNOWN_REGION: 404,
}


@dataclass
class SsoRuntime:
    """Per application: the cookie seal, the used states and one client per region."""

    seal: CookieSeal
    consumed: ConsumedStates
    providers: dict[str, OidcProvider]


def runtime(request: Request) -> SsoRuntime:
    found = getattr(request.app.state, "sso", None)
    if isinstance(found, SsoRuntime):
        return found
    svc = services(request)
    settings = svc.settings
    made = SsoRuntime(
        seal=CookieSeal(derive_state_secret(svc.issuer.key), settings.sso_state_seconds),
        consumed=ConsumedStates(svc.engine, settings.sso_state_seconds + 60, settings.redis_url),
        providers={
            region: OidcProvider(region, config, settings.sso_http_timeout_seconds)
            for region, config in settings.sso_providers.items()
        },
    )
    request.app.state.sso = made
    return made


def _redirect_uri(request: Request, provider: OidcProvider) -> str:
    base = (
        provider.config.redirect_base or settings_of(request).base_url or str(request.base_url)
    ).rstrip("/")
    return f"{base}/auth/sso/{provider.region}/callback"


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=settings_of(request).sso_state_seconds,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",  # sent on the top-level redirect back from the provider
        secure=settings_of(request).secure_cookies or is_https(request),
    )


def _clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=settings_of(request).secure_cookies or is_https(request),
    )


def _to_result(request: Request, outcome: Outcome) -> Response:
    response = redirect(f"/auth/sso/{outcome.region}/result")
    _set_cookie(request, response, OUTCOME_COOKIE, runtime(request).seal.seal_outcome(outcome))
    _clear_cookie(request, response, LOGIN_COOKIE)
    return response


# -- pages ------------------------------------------------------------------------------


@router.get("")
def choose(request: Request) -> Response:
    if not settings_of(request).sso_providers:
        return error_page(request, 404, "not_found")
    return page(request, "sso/choose.html", st=texts(lang_of(request)))


@router.get("/{region}/login")
async def login(request: Request, region: str) -> Response:
    provider = runtime(request).providers.get(region)
    if provider is None:
        return error_page(request, 404, "not_found")
    configured = await run_in_threadpool(get_region, engine_of(request), region)
    if configured is not None and not configured.enabled(Feature.SSO):
        return feature_off_page(request, PatientRegion(region, configured), Feature.SSO)
    try:
        url, pending = await provider.begin(_redirect_uri(request, provider))
    except SsoError as exc:
        log.warning("SSO login for region %s could not start: %s", region, exc)
        await run_in_threadpool(
            record,
            engine_of(request),
            region,
            FAILED,
            f"{exc.failure}: {exc.detail}; ip {client_ip(request)}",
        )
        return _to_result(request, Outcome(region, exc.failure))
    response = redirect(url)
    _set_cookie(request, response, LOGIN_COOKIE, runtime(request).seal.seal_login(pending))
    return response


@router.get("/{region}/callback")
async def callback(request: Request, region: str) -> Response:
    rt = runtime(request)
    provider = rt.providers.get(region)
    if provider is None:
        return error_page(request, 404, "not_found")
    engine = engine_of(request)
    ip = client_ip(request)
    params = request.query_params
    try:
        if any(len(params.getlist(k)) > 1 for k in params):
            raise SsoError(Failure.PROVIDER_ERROR, "a parameter was repeated in the callback")
        pending = rt.seal.open_login(request.cookies.get(LOGIN_COOKIE))
        state_matches(pending, region, params.get("state"))
        if not await run_in_threadpool(rt.consumed.consume, pending.state):
            raise SsoError(Failure.REPLAYED, "this state was already used")
        identity = await provider.finish(pending, dict(params))
    except SsoError as exc:
        if exc.failure in PROVIDER_FAILURES:
            log.warning("SSO login for region %s failed at the provider: %s", region, exc)
        actor = f"sso:{region}:{exc.sub}" if exc.sub else "anonymous"
        outcome = DENIED if exc.failure in DENIALS else FAILED
        detail = f"{exc.failure}: {exc.detail}; ip {ip}"
        await run_in_threadpool(record, engine, region, outcome, detail, actor=actor)
        return _to_result(request, Outcome(region, exc.failure))
    return await run_in_threadpool(_sign_in, request, engine, provider, identity, ip)


def _sign_in(
    request: Request, engine: Engine, provider: OidcProvider, identity: Identity, ip: str
) -> Response:
    """The identified person: to their card if exactly one carries their SNILS."""
    region = identity.region
    masked = mask_snils(identity.snils)
    patient_ids = find_patients(engine, identity.snils)
    if len(patient_ids) != 1:
        failure = Failure.NO_CARD if not patient_ids else Failure.DUPLICATE_CARDS
        cards = ", ".join(f"Patient/{p}" for p in patient_ids[:10])
        detail = f"{failure}: SNILS {masked}" + (f" is on {cards}" if cards else "")
        record(engine, region, FAILED, f"{detail}; ip {ip}", actor=identity.login)
        return _to_result(request, Outcome(region, failure, masked))
    try:
        account = patient_account(engine, identity, patient_ids[0])
    except SsoError as exc:
        record(
            engine, region, DENIED, f"{exc.failure}: {exc.detail}; ip {ip}", actor=identity.login
        )
        return _to_result(request, Outcome(region, exc.failure, masked))
    # The provider authenticated the person (its own second factor): no TOTP step here.
    cookie = fresh_session(request, account, mfa_ok=True)
    record(
        engine,
        region,
        SUCCESS,
        f"signed in via {provider.config.name} as {identity.login}; ip {ip}",
        actor=account.actor,
        patient_id=patient_ids[0],
    )
    # An SSO patient who has not consented to the processing of personal data yet goes
    # to the consent page first (medcard.onboarding.card_gate).
    response = redirect(card_gate(engine, account) or landing(account))
    set_session_cookie(response, cookie, settings_of(request), https=is_https(request))
    _clear_cookie(request, response, LOGIN_COOKIE)
    _clear_cookie(request, response, OUTCOME_COOKIE)
    return response


@router.get("/{region}/result")
def result(request: Request, region: str) -> Response:
    rt = runtime(request)
    provider = rt.providers.get(region)
    if provider is None:
        return error_page(request, 404, "not_found")
    outcome = rt.seal.open_outcome(request.cookies.get(OUTCOME_COOKIE))
    if outcome is None or outcome.region != region:
        outcome = Outcome(region, Failure.BAD_STATE)
    st = texts(lang_of(request))
    kind = outcome.failure.value
    fill = {"name": provider.config.name, "snils": outcome.snils_masked}
    return page(
        request,
        "sso/result.html",
        STATUS.get(outcome.failure, 400),
        st=st,
        kind=kind,
        title=st(f"{kind}_title").format(**fill),
        paragraphs=[p.format(**fill) for p in st(f"{kind}_body").split("\n")],
        steps=[s.format(**fill) for s in st(f"{kind}_steps").split("\n") if s],
        retry_url=f"/auth/sso/{region}/login",
        register_url=_registration_path(request),
        show_retry=outcome.failure not in {Failure.NO_CARD, Failure.DUPLICATE_CARDS},
    )


def region_names(request: Request) -> dict[str, str]:
    """Region code → name, for the buttons when several regions have a provider
    ("Войти через Госуслуги (г. Москва)" reads better than "(77)")."""
    try:
        return {r.code: r.name for r in list_regions(engine_of(request))}
    except SQLAlchemyError:  # the buttons fall back to the codes
        log.warning("region names for the SSO buttons could not be read", exc_info=True)
        return {}


templates.env.globals["sso_region_names"] = region_names


REGISTRATION_PATHS: Final = ("/register", "/registration", "/signup")


def _registration_path(request: Request) -> str:
    """The self-registration page, when this deployment has one."""
    paths = {getattr(route, "path", "") for route in request.app.routes}
    return next((p for p in REGISTRATION_PATHS if p in paths), "")


# -- texts --------------------------------------------------------------------------------
# Kept here until the SSO keys join the shared catalogue (web/i18n.py).  "{name}" is the
# provider's name from the configuration, "{snils}" the masked SNILS.

TEXTS: Final[dict[str, dict[str, str]]] = {
    "ru": {
        "button": "Войти через {name}",
        "choose_title": "Вход через портал госуслуг",
        "choose_lead": "Войдите с учётной записью портала госуслуг: медицинская карта найдётся по вашему СНИЛС.",
        "steps_title": "Что делать",
        "retry": "Начать вход заново",
        "password_login": "Войти по логину и паролю",
        "register": "Зарегистрироваться",
        "no_card_title": "Медицинская карта не найдена",
        "no_card_body": "Портал «{name}» подтвердил вашу личность, но медицинской карты с вашим СНИЛС {snils} в системе нет.\nВход не выполнен, учётная запись не создана.",
        "no_card_steps": "Обратитесь в регистратуру поликлиники, к которой вы прикреплены, с паспортом, полисом ОМС и СНИЛС: там найдут вашу карту и внесут в неё СНИЛС.\nЕсли вы ещё не прикреплены ни к одной поликлинике, прикрепитесь или зарегистрируйтесь: карту заведут по вашим документам.\nПосле этого снова войдите через «{name}».",
        "duplicate_cards_title": "Найдено несколько медицинских карт",
        "duplicate_cards_body": "С вашим СНИЛС {snils} в системе несколько медицинских карт. Так бывает, когда карту заводят повторно.\nЧтобы записи разных карт не перепутались, вход невозможен, пока регистратура не объединит дубликаты.",
        "duplicate_cards_steps": "Обратитесь в регистратуру поликлиники, к которой вы прикреплены, и попросите объединить ваши медицинские карты.\nПосле объединения снова войдите через «{name}».",
        "access_denied_title": "Вход отменён",
        "access_denied_body": "Вход через «{name}» был отменён, или вы не разрешили передать данные.",
        "access_denied_steps": "Чтобы войти, начните вход заново и разрешите передачу ФИО и СНИЛС.",
        "bad_state_title": "Ссылка для входа устарела",
        "bad_state_body": "Ответ портала не относится ко входу, начатому в этом браузере, или время ожидания истекло. Вход не выполнен.",
        "bad_state_steps": "Начните вход заново в этом же браузере.",
        "replayed_title": "Ссылка для входа уже использована",
        "replayed_body": "Этот ответ портала уже был обработан; повторно он не принимается. Вход не выполнен.",
        "replayed_steps": "Начните вход заново.",
        "code_refused_title": "Портал не подтвердил вход",
        "code_refused_body": "Портал «{name}» отклонил код входа: он истёк или уже был использован. Вход не выполнен.",
        "code_refused_steps": "Начните вход заново.",
        "id_token_invalid_title": "Не удалось проверить ответ портала",
        "id_token_invalid_body": "Подтверждение личности от портала «{name}» не прошло проверку подписи или содержания. Вход не выполнен.",
        "id_token_invalid_steps": "Попробуйте войти ещё раз.\nЕсли ошибка повторяется, войдите по логину и паролю и сообщите в службу поддержки.",
        "provider_error_title": "Портал вернул ошибку",
        "provider_error_body": "Портал «{name}» ответил ошибкой. Вход не выполнен.",
        "provider_error_steps": "Попробуйте войти позже или войдите по логину и паролю.",
        "provider_unavailable_title": "Портал недоступен",
        "provider_unavailable_body": "Не удалось связаться с порталом «{name}». Вход не выполнен.",
        "provider_unavailable_steps": "Попробуйте войти позже или войдите по логину и паролю.",
        "no_snils_title": "Портал не передал СНИЛС",
        "no_snils_body": "Без СНИЛС нельзя найти вашу медицинскую карту. Вход не выполнен.",
        "no_snils_steps": "Проверьте, что СНИЛС указан и подтверждён в вашей учётной записи на портале «{name}».\nНачните вход заново и разрешите передачу СНИЛС.",
        "bad_snils_title": "СНИЛС не прошёл проверку",
        "bad_snils_body": "Портал «{name}» передал СНИЛС с неверным контрольным числом. Вход не выполнен.",
        "bad_snils_steps": "Проверьте СНИЛС в учётной записи на портале «{name}».",
        "account_inactive_title": "Учётная запись отключена",
        "account_inactive_body": "Вход в учётную запись, связанную с вашим СНИЛС {snils}, отключён.",
        "account_inactive_steps": "Обратитесь в регистратуру поликлиники, к которой вы прикреплены.",
        "unknown_region_title": "Вход через этот портал не настроен",
        "unknown_region_body": "Для этого региона вход через портал не настроен.",
        "unknown_region_steps": "",
    },
    "en": {
        "button": "Sign in with {name}",
        "choose_title": "Sign in through the public services portal",
        "choose_lead": "Sign in with your public services portal account: your medical card is found by your SNILS.",
        "steps_title": "What to do",
        "retry": "Start signing in again",
        "password_login": "Sign in with a login and password",
        "register": "Register",
        "no_card_title": "Medical card not found",
        "no_card_body": "«{name}» confirmed who you are, but there is no medical card with your SNILS {snils} in the system.\nYou are not signed in, and no account was created.",
        "no_card_steps": "Contact the registry of the polyclinic you are attached to, with your passport, OMS policy and SNILS: they will find your card and add your SNILS to it.\nIf you are not attached to any polyclinic yet, get attached or register: a card will be opened from your documents.\nThen sign in with «{name}» again.",
        "duplicate_cards_title": "Several medical cards found",
        "duplicate_cards_body": "There are several medical cards with your SNILS {snils}. This happens when a card is opened twice.\nSo that the records of different cards are not mixed up, you cannot sign in until the registry merges the duplicates.",
        "duplicate_cards_steps": "Contact the registry of the polyclinic you are attached to and ask them to merge your medical cards.\nOnce they are merged, sign in with «{name}» again.",
        "access_denied_title": "Sign-in cancelled",
        "access_denied_body": "Signing in with «{name}» was cancelled, or you did not allow your data to be shared.",
        "access_denied_steps": "To sign in, start again and allow your name and SNILS to be shared.",
        "bad_state_title": "This sign-in link has expired",
        "bad_state_body": "The portal's answer does not belong to a sign-in started in this browser, or it came too late. You are not signed in.",
        "bad_state_steps": "Start signing in again in this browser.",
        "replayed_title": "This sign-in link was already used",
        "replayed_body": "This answer from the portal has already been processed and is not accepted twice. You are not signed in.",
        "replayed_steps": "Start signing in again.",
        "code_refused_title": "The portal did not confirm the sign-in",
        "code_refused_body": "«{name}» refused the sign-in code: it has expired or was already used. You are not signed in.",
        "code_refused_steps": "Start signing in again.",
        "id_token_invalid_title": "The portal's answer could not be verified",
        "id_token_invalid_body": "The identity confirmation from «{name}» failed its signature or content checks. You are not signed in.",
        "id_token_invalid_steps": "Try signing in again.\nIf this keeps happening, sign in with a login and password and tell the support team.",
        "provider_error_title": "The portal returned an error",
        "provider_error_body": "«{name}» answered with an error. You are not signed in.",
        "provider_error_steps": "Try again later, or sign in with a login and password.",
        "provider_unavailable_title": "The portal is unavailable",
        "provider_unavailable_body": "«{name}» could not be reached. You are not signed in.",
        "provider_unavailable_steps": "Try again later, or sign in with a login and password.",
        "no_snils_title": "The portal did not share your SNILS",
        "no_snils_body": "Without a SNILS your medical card cannot be found. You are not signed in.",
        "no_snils_steps": "Check that your SNILS is entered and confirmed in your «{name}» account.\nStart signing in again and allow your SNILS to be shared.",
        "bad_snils_title": "The SNILS failed its check",
        "bad_snils_body": "«{name}» sent a SNILS with a wrong control number. You are not signed in.",
        "bad_snils_steps": "Check the SNILS in your «{name}» account.",
        "account_inactive_title": "The account is disabled",
        "account_inactive_body": "Signing in to the account linked to your SNILS {snils} has been turned off.",
        "account_inactive_steps": "Contact the registry of the polyclinic you are attached to.",
        "unknown_region_title": "Signing in through this portal is not set up",
        "unknown_region_body": "Signing in through a portal is not set up for this region.",
        "unknown_region_steps": "",
    },
}


def texts(lang: str) -> _Texts:
    return _Texts(TEXTS.get(lang, TEXTS["ru"]))


@dataclass(frozen=True)
class _Texts:
    table: dict[str, str]

    def __call__(self, key: str) -> str:
        return self.table.get(key) or TEXTS["ru"].get(key, key)
