"""Page texts in Russian (the default) and English.

The sign-in texts live here; each area (portal, workspace, ...) keeps its own in
``medcard.web.texts.<area>``, merged below.  The keys move into Babel catalogues unchanged
when translators need .po files.  The language comes from ``?lang=`` (which
also sets a cookie), then the cookie, then Russian.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from medcard.web import texts

LANGS: Final = ("ru", "en")
DEFAULT_LANG: Final = "ru"
COOKIE: Final = "medcard_lang"

_CORE: Final[Mapping[str, Mapping[str, str]]] = {
    "ru": {
        "site_name": "Медицинская карта",
        "other_lang": "English",
        "skip": "К содержимому",
        # login
        "login_title": "Вход",
        "login_lead": "Войдите в электронную медицинскую карту.",
        "login_label": "Электронная почта или телефон",
        "password_label": "Пароль",
        "login_submit": "Войти",
        "login_failed": "Неверный логин или пароль",
        "login_failed_note": "После пяти неудачных попыток вход временно приостанавливается, и пауза растёт с каждой новой ошибкой. Если вы уверены в пароле, повторите попытку позже или восстановите пароль.",
        "forgot_password": "Забыли пароль?",
        "notice_expired": "Сеанс завершён из-за бездействия. Войдите снова.",
        "notice_signed_out": "Вы вышли из системы.",
        "notice_login_required": "Войдите, чтобы продолжить.",
        "notice_mfa_locked": "Слишком много неверных кодов: вход временно приостановлен. Повторите попытку позже.",
        "notice_reset_done": "Пароль изменён. Войдите с новым паролем.",
        # second factor
        "mfa_title": "Код подтверждения",
        "mfa_lead": "Введите шестизначный код из приложения-аутентификатора.",
        "code_label": "Код из приложения",
        "confirm": "Подтвердить",
        "mfa_failed": "Неверный или уже использованный код. Дождитесь следующего кода и попробуйте снова.",
        "enrol_title": "Подключение второго фактора",
        "enrol_lead": "Сотрудники входят по паролю и одноразовому коду. Добавьте ключ в приложение-аутентификатор (например, Яндекс Ключ, Google Authenticator или FreeOTP) и введите код, который оно покажет.",
        "enrol_secret": "Секретный ключ (ввести вручную)",
        "enrol_uri": "Ссылка otpauth для приложений, которые её принимают",
        "enrol_keep_secret": "Никому не сообщайте этот ключ. Код меняется каждые 30 секунд.",
        "cancel_sign_out": "Отменить и выйти",
        # home
        "me_title": "Моя страница",
        "me_signed_in_as": "Вы вошли как",
        "me_login": "Логин",
        "me_role": "Роль",
        "me_organization": "Организация",
        "me_region": "Регион",
        "me_patient": "Медицинская карта пациента",
        "me_practitioner": "Карточка врача",
        "me_not_linked": "не привязана: личность ещё не подтверждена",
        "me_mfa": "Вход по коду",
        "me_next": "Разделы карты и рабочее место появятся здесь в следующих версиях.",
        "on": "включён",
        "off": "выключен",
        "logout": "Выйти",
        "change_password": "Сменить пароль",
        "security": "Вход по одноразовому коду",
        "back_home": "На мою страницу",
        "role_patient": "Пациент",
        "role_practitioner": "Врач",
        "role_registrar": "Регистратор",
        "role_org_admin": "Администратор организации",
        "role_reviewer": "Эксперт по обращениям",
        "role_region_admin": "Администратор региона",
        # password change
        "password_title": "Смена пароля",
        "current_password": "Текущий пароль",
        "new_password": "Новый пароль",
        "new_password2": "Новый пароль ещё раз",
        "password_hint": "Не короче 10 символов и не совпадает с логином.",
        "save": "Сохранить",
        "wrong_current_password": "Текущий пароль указан неверно",
        "passwords_differ": "Новые пароли не совпадают",
        "password_too_short": "Пароль должен быть не короче 10 символов",
        "password_too_long": "Пароль слишком длинный",
        "password_is_login": "Пароль не должен совпадать с логином",
        "notice_password_changed": "Пароль изменён. Сеансы на других устройствах завершены.",
        # password reset
        "reset_title": "Восстановление пароля",
        "reset_lead": "Укажите логин — электронную почту или телефон, с которыми вы входите.",
        "reset_submit": "Получить ссылку",
        "reset_sent_title": "Ссылка создана",
        "reset_sent": "Если такая учётная запись существует, для неё создана ссылка для смены пароля. Почтового сервера у нас пока нет, поэтому ссылка записана в журнал сервера: её передаст вам администратор. Ссылка действует 30 минут и только один раз.",
        "reset_demo": "Демонстрационный режим: ссылка показана здесь (и записана в журнал сервера).",
        "reset_form_title": "Новый пароль",
        "reset_invalid_title": "Ссылка недействительна",
        "reset_invalid": "Эта ссылка уже использована, устарела (она действует 30 минут) или скопирована с ошибкой. Запросите новую ссылку.",
        "reset_again": "Запросить новую ссылку",
        # patient TOTP
        "security_title": "Вход по одноразовому коду",
        "security_lead": "Одноразовый код из приложения-аутентификатора защищает карту, даже если пароль узнает кто-то другой.",
        "security_staff": "Для сотрудников вход по коду обязателен и не отключается.",
        "totp_status": "Сейчас вход по коду",
        "totp_start": "Включить вход по коду",
        "totp_confirm_lead": "Добавьте ключ в приложение-аутентификатор и введите код, который оно покажет.",
        "totp_disable": "Выключить вход по коду",
        "totp_disable_lead": "Чтобы выключить, введите текущий код из приложения.",
        "notice_totp_on": "Вход по коду включён.",
        "notice_totp_off": "Вход по коду выключен.",
        # errors
        "csrf_title": "Форма устарела",
        "csrf_body": "Запрос отклонён: не удалось подтвердить, что форма отправлена с этой страницы. Вернитесь назад, обновите страницу и повторите. Если ошибка повторяется, разрешите этому сайту сохранять cookies.",
        "error_title": "Ошибка",
        "error_body": "Что-то пошло не так. Ошибка записана в журнал сервера; попробуйте ещё раз позже.",
        "bad_request_title": "Запрос не понят",
        "bad_request_body": "Проверьте, что форма заполнена, и отправьте её ещё раз.",
        "forbidden_title": "Нет доступа",
        "forbidden_body": "Это действие вам недоступно.",
        "not_found_title": "Страница не найдена",
        "not_found_body": "Такой страницы нет.",
        "too_many_title": "Слишком много попыток",
        "too_many_body": "С этого адреса или для этой учётной записи было слишком много попыток за минуту. Подождите минуту и попробуйте снова.",
        "to_start": "На главную",
    },
    "en": {
        "site_name": "Medical card",
        "other_lang": "Русский",
        "skip": "Skip to content",
        "login_title": "Sign in",
        "login_lead": "Sign in to your electronic medical card.",
        "login_label": "E-mail or phone",
        "password_label": "Password",
        "login_submit": "Sign in",
        "login_failed": "Wrong login or password",
        "login_failed_note": "After five failed attempts sign-in is paused for a while, and the pause grows with every further failure. If you are sure of your password, try again later or reset it.",
        "forgot_password": "Forgot your password?",
        "notice_expired": "You were signed out after a period of inactivity. Please sign in again.",
        "notice_signed_out": "You have signed out.",
        "notice_login_required": "Please sign in to continue.",
        "notice_mfa_locked": "Too many wrong codes: sign-in is paused for a while. Please try again later.",
        "notice_reset_done": "Your password has been changed. Sign in with the new password.",
        "mfa_title": "Verification code",
        "mfa_lead": "Enter the six-digit code from your authenticator app.",
        "code_label": "Code from the app",
        "confirm": "Confirm",
        "mfa_failed": "Wrong or already used code. Wait for the next code and try again.",
        "enrol_title": "Set up a second factor",
        "enrol_lead": "Staff sign in with a password and a one-time code. Add this key to an authenticator app (for example Yandex Key, Google Authenticator or FreeOTP) and enter the code it shows.",
        "enrol_secret": "Secret key (to type in)",
        "enrol_uri": "otpauth link, for apps that accept one",
        "enrol_keep_secret": "Do not share this key. The code changes every 30 seconds.",
        "cancel_sign_out": "Cancel and sign out",
        "me_title": "My page",
        "me_signed_in_as": "Signed in as",
        "me_login": "Login",
        "me_role": "Role",
        "me_organization": "Organisation",
        "me_region": "Region",
        "me_patient": "Patient record",
        "me_practitioner": "Practitioner record",
        "me_not_linked": "not linked yet: identity not verified",
        "me_mfa": "Sign-in codes",
        "me_next": "Record sections and the workspace will appear here in later versions.",
        "on": "on",
        "off": "off",
        "logout": "Sign out",
        "change_password": "Change password",
        "security": "One-time sign-in codes",
        "back_home": "Back to my page",
        "role_patient": "Patient",
        "role_practitioner": "Practitioner",
        "role_registrar": "Registrar",
        "role_org_admin": "Organisation administrator",
        "role_reviewer": "Reviewer",
        "role_region_admin": "Regional administrator",
        "password_title": "Change password",
        "current_password": "Current password",
        "new_password": "New password",
        "new_password2": "New password again",
        "password_hint": "At least 10 characters, not the same as your login.",
        "save": "Save",
        "wrong_current_password": "The current password is wrong",
        "passwords_differ": "The new passwords differ",
        "password_too_short": "The password must be at least 10 characters long",
        "password_too_long": "The password is too long",
        "password_is_login": "The password must not be the same as the login",
        "notice_password_changed": "Password changed. Sessions on other devices have been ended.",
        "reset_title": "Reset password",
        "reset_lead": "Enter your login: the e-mail address or phone number you sign in with.",
        "reset_submit": "Get a link",
        "reset_sent_title": "Link created",
        "reset_sent": "If such an account exists, a password reset link has been created for it. We have no mail server yet, so the link is written to the server log: an administrator will pass it on to you. The link works once, for 30 minutes.",
        "reset_demo": "Demo mode: the link is shown here (and written to the server log).",
        "reset_form_title": "New password",
        "reset_invalid_title": "This link does not work",
        "reset_invalid": "This link has been used already, has expired (links last 30 minutes) or was copied incompletely. Please ask for a new one.",
        "reset_again": "Ask for a new link",
        "security_title": "One-time sign-in codes",
        "security_lead": "A one-time code from an authenticator app protects your record even if someone learns your password.",
        "security_staff": "Staff must sign in with a code; it cannot be turned off.",
        "totp_status": "Sign-in codes are currently",
        "totp_start": "Turn on sign-in codes",
        "totp_confirm_lead": "Add the key to an authenticator app and enter the code it shows.",
        "totp_disable": "Turn off sign-in codes",
        "totp_disable_lead": "To turn them off, enter a current code from the app.",
        "notice_totp_on": "Sign-in codes are on.",
        "notice_totp_off": "Sign-in codes are off.",
        "csrf_title": "This form has expired",
        "csrf_body": "The request was refused: it could not be confirmed that the form was sent from this site. Go back, reload the page and try again. If this keeps happening, allow this site to store cookies.",
        "error_title": "Error",
        "error_body": "Something went wrong. The error has been logged; please try again later.",
        "bad_request_title": "Request not understood",
        "bad_request_body": "Check that the form is filled in and send it again.",
        "forbidden_title": "Not allowed",
        "forbidden_body": "This action is not available to you.",
        "not_found_title": "Page not found",
        "not_found_body": "There is no such page.",
        "too_many_title": "Too many attempts",
        "too_many_body": "Too many attempts from this address or for this account in the last minute. Wait a minute and try again.",
        "to_start": "Home",
    },
}


def _merge() -> dict[str, dict[str, str]]:
    """The core texts plus each area's own module (``medcard.web.texts``), so that areas
    add their texts without editing one shared file; a key defined twice is a bug."""
    merged = {lang: dict(_CORE[lang]) for lang in LANGS}
    for area in texts.AREAS:
        for lang, extra in (("ru", area.RU), ("en", area.EN)):
            clash = merged[lang].keys() & extra.keys()
            if clash:
                raise RuntimeError(f"{area.__name__}: text keys defined twice: {sorted(clash)}")
            merged[lang].update(extra)
    return merged


CATALOGUE: Final[Mapping[str, Mapping[str, str]]] = _merge()

Translate = Callable[[str], str]


def translator(lang: str) -> Translate:
    """``t(key)``: the text in ``lang``, falling back to Russian, then to the key itself."""
    texts = CATALOGUE.get(lang, CATALOGUE[DEFAULT_LANG])
    fallback = CATALOGUE[DEFAULT_LANG]

    def t(key: str) -> str:
        return texts.get(key) or fallback.get(key) or key

    return t


def choose(query_lang: str | None, cookie_lang: str | None) -> str:
    for lang in (query_lang, cookie_lang):
        if lang in LANGS:
            return lang
    return DEFAULT_LANG
