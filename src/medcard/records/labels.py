"""Labels for the fields and statuses of card entries, in Russian and English.

Entries carry label keys, not words, so the portal and the workspace render them in
the reader's language; values (diagnoses, conclusions) are the record's own text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

_LABELS: Final[Mapping[str, tuple[str, str]]] = {
    # fields
    "kind": ("Вид", "Kind"),
    "code": ("Код", "Code"),
    "period": ("Период", "Period"),
    "date": ("Дата", "Date"),
    "reason": ("Причина обращения", "Reason"),
    "diagnosis": ("Диагноз", "Diagnosis"),
    "location": ("Место", "Location"),
    "onset": ("Начало", "Onset"),
    "abatement": ("Выздоровление", "Resolved on"),
    "clinical_status": ("Клинический статус", "Clinical status"),
    "verification": ("Подтверждение", "Verification"),
    "category": ("Категория", "Category"),
    "criticality": ("Опасность", "Criticality"),
    "reaction": ("Реакция", "Reaction"),
    "value": ("Результат", "Result"),
    "reference_range": ("Норма", "Reference range"),
    "interpretation": ("Оценка", "Interpretation"),
    "conclusion": ("Заключение", "Conclusion"),
    "modality": ("Метод", "Modality"),
    "body_site": ("Область исследования", "Body site"),
    "instances": ("Снимков", "Images"),
    "lot": ("Серия", "Lot"),
    "dose_number": ("Номер дозы", "Dose number"),
    "route": ("Способ введения", "Route"),
    "series": ("Схема", "Series"),
    "target_disease": ("Против", "Against"),
    "origin": ("Сведения получены", "Reported by"),
    "priority": ("Срочность", "Priority"),
    "performer": ("Куда направлен", "Referred to"),
    "requester": ("Кто направил", "Referred by"),
    "dosage": ("Как принимать", "Dosage"),
    "validity": ("Действителен", "Valid"),
    "quantity": ("Количество", "Quantity"),
    "number": ("Номер", "Number"),
    "health_group": ("Группа здоровья", "Health group"),
    "author": ("Автор", "Author"),
    "organization": ("Организация", "Organisation"),
    "practitioner": ("Врач", "Practitioner"),
    "text": ("Текст", "Text"),
    "note": ("Примечание", "Note"),
    "document": ("Документ", "Document"),
    "description": ("Описание", "Description"),
    "medication": ("Препарат", "Medication"),
    "type": ("Тип", "Type"),
    # statuses
    "status_finished": ("завершён", "finished"),
    "status_in-progress": ("идёт", "in progress"),
    "status_planned": ("запланирован", "planned"),
    "status_arrived": ("пациент пришёл", "arrived"),
    "status_triaged": ("сортировка", "triaged"),
    "status_onleave": ("в отпуске", "on leave"),
    "status_cancelled": ("отменён", "cancelled"),
    "status_final": ("готов", "final"),
    "status_preliminary": ("предварительный", "preliminary"),
    "status_registered": ("зарегистрирован", "registered"),
    "status_partial": ("частичный", "partial"),
    "status_amended": ("исправлен", "amended"),
    "status_corrected": ("исправлен", "corrected"),
    "status_appended": ("дополнен", "appended"),
    "status_completed": ("выполнено", "completed"),
    "status_active": ("действует", "active"),
    "status_on-hold": ("приостановлено", "on hold"),
    "status_stopped": ("прекращено", "stopped"),
    "status_draft": ("черновик", "draft"),
    "status_revoked": ("отозвано", "revoked"),
    "status_current": ("действует", "current"),
    "status_superseded": ("заменён", "superseded"),
    "status_booked": ("записан", "booked"),
    "status_proposed": ("предложено", "proposed"),
    "status_pending": ("ожидает", "pending"),
    "status_fulfilled": ("состоялся", "fulfilled"),
    "status_noshow": ("неявка", "no-show"),
    "status_not-done": ("не сделано", "not done"),
    "status_resolved": ("излечено", "resolved"),
    "status_inactive": ("неактивно", "inactive"),
    "status_remission": ("ремиссия", "remission"),
    "status_recurrence": ("рецидив", "recurrence"),
    "status_relapse": ("рецидив", "relapse"),
    "status_available": ("доступно", "available"),
    "status_unknown": ("неизвестно", "unknown"),
    "status_confirmed": ("подтверждён", "confirmed"),
    "status_provisional": ("предварительный", "provisional"),
    "status_differential": ("под вопросом", "differential"),
    "status_unconfirmed": ("не подтверждён", "unconfirmed"),
    "status_refuted": ("опровергнут", "refuted"),
    "priority_routine": ("планово", "routine"),
    "priority_urgent": ("срочно", "urgent"),
    "priority_asap": ("как можно скорее", "as soon as possible"),
    "priority_stat": ("немедленно", "immediately"),
    "criticality_high": ("высокая", "high"),
    "criticality_low": ("низкая", "low"),
    "criticality_unable-to-assess": ("не оценена", "not assessed"),
    "allergy_medication": ("лекарства", "medication"),
    "allergy_food": ("пища", "food"),
    "allergy_environment": ("окружающая среда", "environment"),
    "allergy_biologic": ("биологические вещества", "biologic"),
    "flag_H": ("выше нормы", "above range"),
    "flag_HH": ("намного выше нормы", "far above range"),
    "flag_L": ("ниже нормы", "below range"),
    "flag_LL": ("намного ниже нормы", "far below range"),
    "flag_A": ("вне нормы", "abnormal"),
    "flag_AA": ("критическое значение", "critical"),
    "flag_N": ("в норме", "normal"),
}


def label(key: str, lang: str = "ru") -> str:
    """The label in ``lang``; an unknown key is shown as it is (a status code, say)."""
    pair = _LABELS.get(key)
    if pair is None:
        return key.split("_", 1)[1] if key.startswith(("status_", "priority_")) else key
    return pair[1] if lang == "en" else pair[0]


def known(key: str) -> bool:
    return key in _LABELS


_VALUE_PREFIXES: Final = ("status_", "priority_", "criticality_", "allergy_", "flag_")


def value_text(value: str, lang: str = "ru") -> str:
    """A detail value: coded values (``status_final``) in words, record text as it is."""
    if value.startswith(_VALUE_PREFIXES):
        return label(value, lang)
    return value
