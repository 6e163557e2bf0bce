"""Dates as Russian clinicians write and read them: ДД.ММ.ГГГГ and ДД.ММ.ГГГГ ЧЧ:ММ.

Browsers draw ``<input type="date">`` in the browser's locale (mm/dd/yyyy in an
en-US browser), so the forms use text inputs with these formats and the server parses
them, accepting ISO 8601 as well (what scripts, older links and copy-paste send).
Instants are shown in the time zone of the patient's region (``medcard.regions.zone``),
always with the zone named: «04.12.2026 19:02 (МСК+2)», «2026-12-04 19:02 (MSK+2)» in
English.  Russian zones are named by their offset from Moscow, as Russians name them
(МСК, МСК+2, МСК−1); any other zone by its offset from UTC.  Each page that shows
instants says once, in full, which zone they are in (``Times.note``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Europe/Moscow")
DAY_FORMAT = "ДД.ММ.ГГГГ"
DATETIME_FORMAT = "ДД.ММ.ГГГГ ЧЧ:ММ"
# The same grammar for the browser's own check (the pattern attribute) and the server.
DAY_PATTERN = r"\d{1,2}\.\d{1,2}\.\d{4}|\d{4}-\d{2}-\d{2}"
DATETIME_PATTERN = (
    r"\d{1,2}\.\d{1,2}\.\d{4}(,? \d{1,2}:\d{2})?|\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?"
)

_RU = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:,?\s+(\d{1,2}):(\d{2}))?$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$")


def _parts(text: str) -> tuple[int, int, int, int | None, int, int]:
    raw = text.strip()
    m = _RU.match(raw)
    if m:
        d, mo, y, h, mi = m.groups()
        return int(y), int(mo), int(d), int(h) if h else None, int(mi or 0), 0
    m = _ISO.match(raw)
    if m:
        y, mo, d, h, mi, s = m.groups()
        return int(y), int(mo), int(d), int(h) if h else None, int(mi or 0), int(s or 0)
    raise ValueError(f"not {DATETIME_FORMAT}: {text!r}")


def parse_day(text: str) -> dt.date:
    """``31.12.2024`` or ``2024-12-31``; ValueError for anything else (a time included)."""
    y, mo, d, h, _, _ = _parts(text)
    if h is not None:
        raise ValueError(f"a date without a time was expected: {text!r}")
    return dt.date(y, mo, d)


def parse_local(text: str) -> tuple[dt.datetime, bool]:
    """A wall-clock date-time (naive) and whether a time was given.

    ``31.12.2024 10:30``, ``31.12.2024, 10:30``, ``31.12.2024``, ``2024-12-31T10:30``,
    ``2024-12-31``.  ValueError when malformed or not a real day or time.
    """
    y, mo, d, h, mi, s = _parts(text)
    # naive on purpose: a wall-clock time; the caller puts it in the clinic's zone
    return dt.datetime(y, mo, d, h or 0, mi, s), h is not None  # noqa: DTZ001


def show_day(value: object) -> str:
    """«31.12.2024» from a date, a datetime or an ISO string (partial dates as they are)."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    text = str(value or "")
    day = text[:10]
    if len(day) == 10 and day[4] == "-" and day[7] == "-":
        return f"{day[8:10]}.{day[5:7]}.{day[:4]}"
    if len(day) == 7 and day[4] == "-":
        return f"{day[5:7]}.{day[:4]}"
    return text


def show_when(value: object, zone: ZoneInfo = TZ) -> str:
    """«31.12.2024 10:30» from an instant (ISO string or datetime), in ``zone``.

    A bare date stays a date; text that is not a date comes back unchanged.
    """
    if isinstance(value, str):
        text = value.strip()
        if len(text) <= 10:
            return show_day(text)
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(zone)
        return value.strftime("%d.%m.%Y %H:%M")
    return show_day(value)


# The zones of the subjects of the Federation (tzdata's zone.tab, country RU).
RUSSIAN_ZONES = frozenset(
    {
        "Europe/Kaliningrad", "Europe/Moscow", "Europe/Kirov", "Europe/Volgograd",
        "Europe/Astrakhan", "Europe/Saratov", "Europe/Ulyanovsk", "Europe/Samara",
        "Europe/Simferopol", "Asia/Yekaterinburg", "Asia/Omsk", "Asia/Novosibirsk",
        "Asia/Barnaul", "Asia/Tomsk", "Asia/Novokuznetsk", "Asia/Krasnoyarsk",
        "Asia/Irkutsk", "Asia/Chita", "Asia/Yakutsk", "Asia/Khandyga", "Asia/Vladivostok",
        "Asia/Ust-Nera", "Asia/Magadan", "Asia/Sakhalin", "Asia/Srednekolymsk",
        "Asia/Kamchatka", "Asia/Anadyr",
    }
)  # fmt: skip


def _offset(minutes: int, sign_minus: str) -> str:
    if minutes == 0:
        return ""
    sign = "+" if minutes > 0 else sign_minus
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours}" + (f":{rest:02d}" if rest else "")


def _minutes(moment: dt.datetime, zone: ZoneInfo) -> int:
    delta = moment.astimezone(zone).utcoffset() or dt.timedelta()
    return int(delta.total_seconds() // 60)


def utc_offset(zone: ZoneInfo, moment: dt.datetime) -> str:
    """«UTC+5» (or «UTC») for ``zone`` at ``moment``."""
    return "UTC" + _offset(_minutes(moment, zone), "−")


def zone_label(zone: ZoneInfo, moment: dt.datetime, lang: str = "ru") -> str:
    """The short name of ``zone`` at ``moment``: «МСК+2» / «MSK+2», else «UTC+1»."""
    if zone.key not in RUSSIAN_ZONES:
        return utc_offset(zone, moment)
    moscow = _minutes(moment, TZ)
    return ("MSK" if lang == "en" else "МСК") + _offset(_minutes(moment, zone) - moscow, "−")


def _instant(value: object) -> dt.datetime | None:
    """An aware datetime from a datetime or an ISO string with a time; None otherwise."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) <= 10:
            return None
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value
    return None


@dataclass(frozen=True)
class Times:
    """How one page shows instants: in ``zone``, in the reader's language, zone named."""

    zone: ZoneInfo = TZ
    lang: str = "ru"
    basis: str = "default"  # whose region the zone is: "patient", "organization", "default"

    @property
    def _format(self) -> str:
        return "%Y-%m-%d %H:%M" if self.lang == "en" else "%d.%m.%Y %H:%M"

    def label(self, moment: dt.datetime | None = None) -> str:
        return zone_label(self.zone, moment or dt.datetime.now(dt.UTC), self.lang)

    def when(self, value: object, *, empty: str = "—") -> str:
        """«04.12.2026 19:02 (МСК+2)»; a bare date as a date; other text unchanged."""
        if value is None or value == "":
            return empty
        moment = _instant(value)
        if moment is None:
            return self.day(value)
        local = moment.astimezone(self.zone)
        return f"{local.strftime(self._format)} ({self.label(moment)})"

    def time(self, value: object) -> str:
        """«19:02 (МСК+2)» (for lists grouped by day); text unchanged if not an instant."""
        moment = _instant(value)
        if moment is None:
            return str(value or "")
        return f"{moment.astimezone(self.zone):%H:%M} ({self.label(moment)})"

    def day(self, value: object) -> str:
        """The calendar day in the zone (an instant late in the evening UTC is tomorrow
        in Yekaterinburg); a date or partial date as it is."""
        moment = _instant(value)
        if moment is not None:
            value = moment.astimezone(self.zone).date()
        if self.lang == "en":
            if isinstance(value, dt.date):
                return value.isoformat()
            return str(value or "")[:10]
        return show_day(value)

    def local(self, value: object) -> dt.datetime | None:
        """The instant as a wall-clock time in the zone (for charts and sorting)."""
        moment = _instant(value)
        return moment.astimezone(self.zone) if moment is not None else None

    def note(self) -> str:
        """The sentence saying which zone the page's times are in, named in full."""
        now = dt.datetime.now(dt.UTC)
        short, utc = self.label(now), utc_offset(self.zone, now)
        named = short if short == utc else f"{short}, {utc}"
        whose = _WHOSE["en" if self.lang == "en" else "ru"].get(self.basis, "")
        if self.lang == "en":
            return f"Times are in the time zone{whose}: {self.zone.key} ({named})."
        return f"Время указано по часовому поясу{whose}: {self.zone.key} ({named})."


_WHOSE = {
    "ru": {"patient": " региона пациента", "organization": " региона вашей организации"},
    "en": {"patient": " of the patient's region", "organization": " of your organisation's region"},
}
