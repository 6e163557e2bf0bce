"""Texts for the landing pages and the role chooser (issue 20)."""

from __future__ import annotations

RU: dict[str, str] = {
    "role_choice_title": "В какой роли вы работаете",
    "role_choice_lead": "У вашей учётной записи несколько ролей. Выберите, в какой из них работать: после входа вы будете попадать на её страницу.",
    "role_choice_legend": "Роль",
    "role_choice_current": "сейчас",
    "role_choice_later": "Выбор запоминается. Сменить роль можно на странице «Моя страница».",
    "role_choice_change": "Сменить роль",
    "me_roles": "Роли",
    "home_of_patient": "медицинская карта",
    "home_of_practitioner": "рабочее место врача",
    "home_of_registrar": "заявки на доступ и прикрепление",
    "home_of_org_admin": "журнал доступа организации",
    "home_of_reviewer": "очередь обращений",
    "home_of_region_admin": "настройки региона",
}

EN: dict[str, str] = {
    "role_choice_title": "Which role are you working in",
    "role_choice_lead": "Your account holds several roles. Choose the one to work in: after signing in you will land on its page.",
    "role_choice_legend": "Role",
    "role_choice_current": "current",
    "role_choice_later": "The choice is remembered. You can change the role on your own page.",
    "role_choice_change": "Change role",
    "me_roles": "Roles",
    "home_of_patient": "medical card",
    "home_of_practitioner": "clinician workspace",
    "home_of_registrar": "access requests and attachment",
    "home_of_org_admin": "the organisation's access log",
    "home_of_reviewer": "review queue",
    "home_of_region_admin": "region settings",
}
