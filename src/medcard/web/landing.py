"""The start page a newcomer sees after ``medcard serve``: what is running and where."""

from __future__ import annotations

from html import escape

TEXT = {
    "ru": {
        "title": "medcard — электронная медицинская карта",
        "lead": "Сервер медицинских карт работает. Пациент открывает здесь свою медицинскую карту, врач — рабочее место. Войдите по логину и паролю или через Госуслуги.",
        "login": "Войти",
        "sso": "Войти через Госуслуги",
        "regions": "Что доступно в вашем регионе",
        "fhir": "FHIR R4 API",
        "meta": "Описание возможностей сервера (CapabilityStatement)",
        "token": 'Токен доступа: <code>medcard token --scope "system/*.*"</code>',
        "health": "Состояние",
        "switch": "English",
    },
    "en": {
        "title": "medcard — electronic medical card",
        "lead": "The medical card server is running. Patients open their medical card here, clinicians their workspace. Sign in with a login and password or through Gosuslugi.",
        "login": "Sign in",
        "sso": "Sign in via Gosuslugi",
        "regions": "What your region offers",
        "fhir": "FHIR R4 API",
        "meta": "Server capabilities (CapabilityStatement)",
        "token": 'Access token: <code>medcard token --scope "system/*.*"</code>',
        "health": "Health",
        "switch": "Русский",
    },
}


def landing_page(base: str, lang: str = "ru", *, sso: bool = False) -> str:
    """``sso``: national sign-in is configured (MEDCARD_SSO_PROVIDERS or the demo's stand-in)."""
    t = TEXT.get(lang, TEXT["ru"])
    other = "en" if lang == "ru" else "ru"
    b = escape(base)
    sso_link = f' · <a href="{b}/auth/sso?lang={escape(lang)}">{t["sso"]}</a>' if sso else ""
    return f"""<!doctype html>
<html lang="{escape(lang)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t["title"]}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
code{{background:#f3f3f3;padding:.1rem .3rem}}</style></head>
<body><h1>{t["title"]}</h1><p>{t["lead"]}</p>
<p><a href="{b}/login?lang={escape(lang)}"><strong>{t["login"]}</strong></a>{sso_link}</p>
<p><a href="{b}/regions?lang={escape(lang)}">{t["regions"]}</a></p>
<ul><li>{t["fhir"]}: <a href="{b}/fhir">{b}/fhir</a></li>
<li><a href="{b}/fhir/metadata">{t["meta"]}</a></li>
<li>{t["token"]}</li>
<li><a href="{b}/readyz">{t["health"]}</a></li></ul>
<p><a href="?lang={other}">{t["switch"]}</a></p></body></html>"""
