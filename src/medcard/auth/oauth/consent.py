"""Scopes in plain words, for the consent screen read before allowing an app.

Each resource scope becomes one sentence naming what the app may do ("читать и
записывать") and what it touches, in everyday words with the FHIR type in brackets so
that a curious patient or a support desk can match it to the API.  Russian first.
``patient/`` scopes speak of the reader's own card; ``user/`` scopes (staff) of the
records their role reaches.
"""

from __future__ import annotations

from medcard.access.smart import Scopes

LANGS = ("ru", "en")

# What a card section is called in everyday words.
RESOURCES: dict[str, dict[str, str]] = {
    "*": {"ru": "всю вашу медицинскую карту", "en": "your whole medical card"},
    "Patient": {"ru": "ваши личные данные в карте", "en": "your personal details in the card"},
    "Observation": {
        "ru": "показатели самочувствия и результаты анализов",
        "en": "well-being readings and test results",
    },
    "Condition": {"ru": "диагнозы и заболевания", "en": "diagnoses and conditions"},
    "AllergyIntolerance": {"ru": "аллергии", "en": "allergies"},
    "Immunization": {"ru": "прививки", "en": "vaccinations"},
    "MedicationRequest": {"ru": "рецепты", "en": "prescriptions"},
    "Encounter": {"ru": "приёмы у врачей", "en": "visits to doctors"},
    "Appointment": {"ru": "записи на приём", "en": "appointments"},
    "DiagnosticReport": {
        "ru": "заключения анализов и исследований",
        "en": "lab and imaging reports",
    },
    "DocumentReference": {"ru": "справки и документы", "en": "certificates and documents"},
    "Composition": {"ru": "протоколы консультаций", "en": "consultation notes"},
    "ServiceRequest": {"ru": "направления", "en": "referrals"},
    "FamilyMemberHistory": {"ru": "семейный анамнез", "en": "family history"},
    "Procedure": {"ru": "процедуры и операции", "en": "procedures and operations"},
    "ImagingStudy": {
        "ru": "исследования (КТ, МРТ, УЗИ)",
        "en": "imaging studies (CT, MRI, ultrasound)",
    },
    "Consent": {"ru": "ваши согласия", "en": "your consents"},
}

# The same for user/ scopes, read by staff: other people's records, within their role.
STAFF_RESOURCES: dict[str, dict[str, str]] = {
    "*": {
        "ru": "медицинские карты пациентов, доступные вам по вашей роли",
        "en": "the medical cards of patients your role gives you access to",
    },
    "Patient": {"ru": "сведения о пациентах", "en": "patients' personal details"},
    "RelatedPerson": {
        "ru": "сведения о представителях пациентов",
        "en": "patients' representatives",
    },
    "Person": {"ru": "сведения о людях в системе", "en": "people known to the system"},
    "Coverage": {"ru": "полисы ОМС и ДМС", "en": "health insurance policies"},
    "EpisodeOfCare": {
        "ru": "прикрепления и случаи обслуживания",
        "en": "attachments and episodes of care",
    },
    "Organization": {"ru": "сведения об организациях", "en": "organisations"},
    "Practitioner": {"ru": "сведения о медицинских работниках", "en": "health professionals"},
    "PractitionerRole": {
        "ru": "должности медицинских работников",
        "en": "health professionals' positions",
    },
    "Location": {"ru": "места оказания помощи", "en": "places of care"},
    "HealthcareService": {"ru": "услуги организаций", "en": "organisations' services"},
    "Endpoint": {"ru": "адреса подключения систем", "en": "system connection endpoints"},
    "Task": {"ru": "обращения об исправлении записей", "en": "correction requests"},
}

VERBS = {
    "ru": {
        "rs": "просматривать",
        "c": "добавлять",
        "u": "изменять",
        "d": "удалять",
        "and": "и",
    },
    "en": {"rs": "read", "c": "add", "u": "change", "d": "delete", "and": "and"},
}

WORDS = {
    "launch/patient": {
        "ru": "знать, чья это карта (ваша), чтобы работать только с ней",
        "en": "know whose card this is (yours), to work with it alone",
    },
    "offline_access": {
        "ru": "сохранять доступ и после того, как вы закроете приложение",
        "en": "keep access after you close the app",
    },
    "openid": {
        "ru": "узнать, что вход выполнили именно вы",
        "en": "know that it was you who signed in",
    },
    "fhirUser": {
        "ru": "узнать, кто вы в системе (ссылку на вашу карту)",
        "en": "know who you are (a link to your card)",
    },
}


def sentences(scopes: Scopes, lang: str = "ru") -> list[str]:
    """One plain sentence per granted scope, in the order the scopes read."""
    lang = lang if lang in LANGS else "ru"
    verbs = VERBS[lang]
    out = []
    for s in scopes.scopes:
        parts = []
        if s.permissions & {"r", "s"}:
            parts.append(verbs["rs"])
        parts += [verbs[c] for c in "cud" if c in s.permissions]
        if len(parts) > 1:
            action = ", ".join(parts[:-1]) + f" {verbs['and']} " + parts[-1]
        else:
            action = parts[0]
        names = STAFF_RESOURCES if s.level == "user" else RESOURCES
        what = names.get(s.resource_type, {}).get(lang) or _fallback(s.resource_type, lang)
        label = f" ({s.resource_type})" if s.resource_type != "*" else ""
        out.append(f"{action.capitalize()} {what}{label}")
    out += [WORDS[w][lang].capitalize() for w in scopes.other if w in WORDS]
    return out


def writes(scopes: Scopes) -> bool:
    """Whether the app may change anything (the screen says so prominently)."""
    return any(s.permissions & {"c", "u", "d"} for s in scopes.scopes)


def _fallback(resource_type: str, lang: str) -> str:
    return "записи типа" if lang == "ru" else "records of type"
