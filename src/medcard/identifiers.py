"""Russian personal and registry identifiers: parse, validate, format.

The design requires SNILS and the unified OMS policy number (ENP) to be checked
with their control digits on every Patient write, so a typo is refused at the
door instead of surfacing weeks later as a rejected claim or a split card.

Functions come in three kinds:

* ``normalize_*`` strip the usual separators and check the length only;
* ``validate_*`` also check control digits and raise :class:`IdentifierError`
  with a reason (Russian first, then English, so it can be shown to a user and
  read in a log);
* ``is_valid_*`` / ``*_checksum_ok`` answer ``True``/``False`` and never raise.

FHIR ``Identifier.system`` values (one per kind, stable; do not change them
once data has been written):

============================  ===============================================
``SNILS_SYSTEM``              ``urn:oid:1.2.643.100.3`` — the OID of the SNILS
                              attribute in Russian qualified certificates
                              (TC 26 / FSB requirements) and the ``@root`` the
                              Ministry of Health's CDA documents (СЭМД) use
                              for SNILS.
``OGRN_SYSTEM``               ``urn:oid:1.2.643.100.1`` — the OGRN attribute
                              OID from the same certificate profile.
``PASSPORT_SYSTEM``           ``https://medcard.example/fhir/sid/passport-rf``
                              — ours: no registry assigns an OID to the
                              namespace of passport numbers.  What a passport
                              *is* comes from НСИ, as in СЭМД: the
                              identifier's ``type`` carries code ``1``
                              («Паспорт гражданина Российской Федерации») of
                              «Документы, удостоверяющие личность»,
                              ``urn:oid:1.2.643.5.1.13.13.99.2.48``, the code
                              system СЭМД's ``identity:IdentityCardType``
                              uses (see :func:`passport_identifier`).
                              Earlier data used an invented sub-OID,
                              ``urn:oid:1.2.643.5.1.13.13.99.2.48.1``; it is
                              still read (:data:`PASSPORT_SYSTEMS`).
``MO_REGISTRY_SYSTEM``        ``urn:oid:1.2.643.5.1.13.13.11.1461`` — НСИ
                              «Реестр медицинских организаций РФ» (ФРМО);
                              the value is the organisation's own OID, e.g.
                              ``1.2.643.5.1.13.13.12.2.77.1234``.
``ENP_SYSTEM``                ``https://medcard.example/fhir/sid/enp`` — no
                              OID for the ENP itself could be confirmed, so
                              this is ours.
``FRMR_SYSTEM``               ``https://medcard.example/fhir/sid/frmr`` — ours
                              too: no OID for a ФРМР person id was confirmed.
============================  ===============================================

The community Ru Core IG (HL7 FHIR Россия) uses ``http(s)://fhir.ru/core/
systems/{snils,passport-RF,OMS,ogrn}`` instead; its URIs moved between
versions, which is why OIDs were preferred here where one exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "ENP_SYSTEM",
    "FRMR_SYSTEM",
    "IDENTITY_DOCUMENT_SYSTEM",
    "LEGACY_PASSPORT_SYSTEM",
    "MO_REGISTRY_SYSTEM",
    "OGRN_SYSTEM",
    "PASSPORT_DOCUMENT_CODE",
    "PASSPORT_DOCUMENT_DISPLAY",
    "PASSPORT_SYSTEM",
    "PASSPORT_SYSTEMS",
    "SNILS_SYSTEM",
    "IdentifierError",
    "enp_check_digit",
    "enp_checksum_ok",
    "format_passport",
    "format_snils",
    "is_passport",
    "is_valid_ogrn",
    "is_valid_snils",
    "make_enp",
    "make_ogrn",
    "make_snils",
    "normalize_passport",
    "normalize_snils",
    "ogrn_check_digit",
    "passport_identifier",
    "passport_search",
    "snils_check_number",
    "validate_enp",
    "validate_enp_format",
    "validate_passport",
    "validate_snils",
]

SNILS_SYSTEM: Final = "urn:oid:1.2.643.100.3"
OGRN_SYSTEM: Final = "urn:oid:1.2.643.100.1"
PASSPORT_SYSTEM: Final = "https://medcard.example/fhir/sid/passport-rf"
#: The invented sub-OID earlier versions wrote; read, never written.
LEGACY_PASSPORT_SYSTEM: Final = "urn:oid:1.2.643.5.1.13.13.99.2.48.1"
PASSPORT_SYSTEMS: Final = (PASSPORT_SYSTEM, LEGACY_PASSPORT_SYSTEM)
#: НСИ «Документы, удостоверяющие личность» (СЭМД ``identity:IdentityCardType``).
IDENTITY_DOCUMENT_SYSTEM: Final = "urn:oid:1.2.643.5.1.13.13.99.2.48"
PASSPORT_DOCUMENT_CODE: Final = "1"
PASSPORT_DOCUMENT_DISPLAY: Final = "Паспорт гражданина Российской Федерации"
_V2_0203: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
MO_REGISTRY_SYSTEM: Final = "urn:oid:1.2.643.5.1.13.13.11.1461"
ENP_SYSTEM: Final = "https://medcard.example/fhir/sid/enp"
FRMR_SYSTEM: Final = "https://medcard.example/fhir/sid/frmr"

# Separators people actually type between digit groups: spaces (incl. NBSP),
# hyphens and dashes.  Anything else (letters, dots) is an error, not noise.
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—]+")

# SNILS numbers up to 001-001-998 were issued before the control number was
# introduced, so the Pension Fund's rules exempt them from the check.
_SNILS_UNCHECKED_MAX = 1_001_998


class IdentifierError(ValueError):
    """An identifier is malformed or fails its control digits."""


def _digits_only(value: str, *, length: int, what: str) -> str:
    if not isinstance(value, str):
        raise IdentifierError(f"{what}: ожидается строка / expected a string")
    compact = _SEPARATORS.sub("", value)
    if compact and not (compact.isascii() and compact.isdigit()):
        raise IdentifierError(
            f"{what}: допускаются только цифры и разделители / only digits and separators allowed"
        )
    if len(compact) != length:
        raise IdentifierError(
            f"{what}: нужно {length} цифр, получено {len(compact)} / "
            f"expected {length} digits, got {len(compact)}"
        )
    return compact


# --- SNILS -----------------------------------------------------------------


def normalize_snils(s: str) -> str:
    """Return the 11 digits of a SNILS written with or without separators."""
    return _digits_only(s, length=11, what="СНИЛС / SNILS")


def snils_check_number(first9: str) -> int:
    """Control number (0..99) of a SNILS from its first nine digits.

    Pension Fund rule: weights 9..1 from the left; a sum below 100 is the
    control number itself, 100 and 101 give 0, above 101 take the sum mod 101
    (and 100 again gives 0).
    """
    if len(first9) != 9 or not first9.isdigit() or not first9.isascii():
        raise IdentifierError("СНИЛС: нужно 9 цифр номера / SNILS: need 9 digits")
    total = sum(int(d) * (9 - i) for i, d in enumerate(first9))
    if total < 100:
        return total
    if total <= 101:
        return 0
    rest = total % 101
    return 0 if rest == 100 else rest


def validate_snils(s: str) -> str:
    """Return the normalised SNILS or raise :class:`IdentifierError` with the reason.

    Numbers up to 001-001-998 are accepted without a control check: they predate
    the control number (Pension Fund verification rules).
    """
    digits = normalize_snils(s)
    number = int(digits[:9])
    if number <= _SNILS_UNCHECKED_MAX:
        return digits
    expected = snils_check_number(digits[:9])
    if int(digits[9:]) != expected:
        raise IdentifierError(
            f"СНИЛС: неверное контрольное число {digits[9:]}, ожидается {expected:02d} / "
            f"SNILS: wrong control number {digits[9:]}, expected {expected:02d}"
        )
    return digits


def is_valid_snils(s: str) -> bool:
    """True when ``s`` is a well-formed SNILS whose control number matches."""
    try:
        validate_snils(s)
    except IdentifierError:
        return False
    return True


def format_snils(s: str) -> str:
    """Format as ``123-456-789 01``, the way SNILS is printed on the card."""
    d = normalize_snils(s)
    return f"{d[0:3]}-{d[3:6]}-{d[6:9]} {d[9:11]}"


def make_snils(first9: str) -> str:
    """Append the control number to nine digits (11 digits, no separators)."""
    return f"{first9}{snils_check_number(first9):02d}"


# --- ENP (единый номер полиса ОМС) ------------------------------------------


def validate_enp_format(s: str) -> str:
    """Return the 16 digits of an ENP or raise; the control digit is not checked."""
    return _digits_only(s, length=16, what="ЕНП / ENP")


def enp_check_digit(first15: str) -> int:
    """Control digit of a unified OMS policy number from its first 15 digits.

    FFOMS appendix Г.2 «Алгоритм расчета контрольного числа единого номера
    полиса ОМС» (the Mod10 method of ISO/HL7 27931:2009), quoted in public
    regional-MIS code; FFOMS's «Общие принципы построения и функционирования
    информационных систем … в сфере ОМС» (приказ ФОМС от 07.04.2011 № 79) is
    the usual home of that appendix, which we could not open directly:

    а) digits in odd positions counting from the right, read right to left,
       form a number, which is multiplied by 2;
    б) digits in even positions, read the same way, form a number written to
       the left of the result of а);
    в) all digits of that string are added;
    г) the control digit is the sum subtracted from the nearest multiple of
       10 that is greater or equal.

    This is the Luhn check digit over the 15 digits (doubling a number and
    summing its digits equals Luhn's per-digit "double, minus 9 if > 9");
    the tests assert the equivalence and the appendix's worked example
    ``845199912289999`` → ``0``.
    """
    if len(first15) != 15 or not first15.isdigit() or not first15.isascii():
        raise IdentifierError("ЕНП: нужно 15 цифр / ENP: need 15 digits")
    reversed_digits = first15[::-1]
    odd = reversed_digits[0::2]  # positions 1, 3, 5 … from the right
    even = reversed_digits[1::2]
    joined = even + str(int(odd) * 2)
    total = sum(int(ch) for ch in joined)
    return (10 - total % 10) % 10


def enp_checksum_ok(s: str) -> bool:
    """True when ``s`` is 16 digits and its last digit is the Г.2 control digit."""
    try:
        digits = validate_enp_format(s)
    except IdentifierError:
        return False
    return enp_check_digit(digits[:15]) == int(digits[15])


def validate_enp(s: str) -> str:
    """Return the 16-digit ENP or raise :class:`IdentifierError` with the reason."""
    digits = validate_enp_format(s)
    expected = enp_check_digit(digits[:15])
    if int(digits[15]) != expected:
        raise IdentifierError(
            f"ЕНП: неверная контрольная цифра {digits[15]}, ожидается {expected} / "
            f"ENP: wrong control digit {digits[15]}, expected {expected}"
        )
    return digits


def make_enp(first15: str) -> str:
    """Append the control digit to 15 digits."""
    return f"{first15}{enp_check_digit(first15)}"


# --- Passport of a citizen of the Russian Federation ------------------------


def normalize_passport(s: str) -> str:
    """Return the 10 digits (4 of the series, 6 of the number) of a passport."""
    if isinstance(s, str):
        s = s.replace("№", " ")
    return _digits_only(s, length=10, what="Паспорт / Passport")


def validate_passport(s: str) -> str:
    """Return the normalised passport or raise; passports carry no control digit.

    Beyond the length we refuse an all-zero series or number, which no
    passport office issues and which forms use as a placeholder.
    """
    digits = normalize_passport(s)
    if digits[:4] == "0000" or digits[4:] == "000000":
        raise IdentifierError(
            "Паспорт: нулевая серия или номер / Passport: series or number is all zeros"
        )
    return digits


def format_passport(s: str) -> str:
    """Format as ``45 06 123456``: series split in two pairs, then the number."""
    d = normalize_passport(s)
    return f"{d[0:2]} {d[2:4]} {d[4:10]}"


def passport_identifier(digits: str, *, use: str = "official") -> dict[str, Any]:
    """The FHIR ``Identifier`` of a passport, typed the way СЭМД types it.

    ``type`` has the НСИ code first (1.2.643.5.1.13.13.99.2.48 code 1, what
    ``identity:IdentityCardType`` carries in a СЭМД document) and HL7 v2's
    ``PPN`` second, for FHIR clients that know only that.
    """
    return {
        "use": use,
        "type": {
            "coding": [
                {
                    "system": IDENTITY_DOCUMENT_SYSTEM,
                    "code": PASSPORT_DOCUMENT_CODE,
                    "display": PASSPORT_DOCUMENT_DISPLAY,
                },
                {"system": _V2_0203, "code": "PPN", "display": "Passport number"},
            ],
            "text": "Паспорт гражданина РФ",
        },
        "system": PASSPORT_SYSTEM,
        "value": digits,
    }


def is_passport(identifier: Mapping[str, Any]) -> bool:
    """A passport of a citizen of the RF: by its system (current or legacy) or НСИ type."""
    if identifier.get("system") in PASSPORT_SYSTEMS:
        return True
    codings = (identifier.get("type") or {}).get("coding") or ()
    return any(
        c.get("system") == IDENTITY_DOCUMENT_SYSTEM and c.get("code") == PASSPORT_DOCUMENT_CODE
        for c in codings
        if isinstance(c, Mapping)
    )


def passport_search(digits: str) -> str:
    """An ``identifier`` search value that finds the passport under either system."""
    return ",".join(f"{system}|{digits}" for system in PASSPORT_SYSTEMS)


# --- OGRN (organisations' registry number) ----------------------------------


def ogrn_check_digit(first12: str) -> int:
    """Control digit of a 13-digit OGRN: the first 12 digits mod 11, then mod 10."""
    if len(first12) != 12 or not first12.isdigit() or not first12.isascii():
        raise IdentifierError("ОГРН: нужно 12 цифр / OGRN: need 12 digits")
    return int(first12) % 11 % 10


def is_valid_ogrn(s: str) -> bool:
    """True for a 13-digit OGRN whose control digit matches."""
    try:
        digits = _digits_only(s, length=13, what="ОГРН / OGRN")
    except IdentifierError:
        return False
    return ogrn_check_digit(digits[:12]) == int(digits[12])


def make_ogrn(first12: str) -> str:
    """Append the control digit to 12 digits."""
    return f"{first12}{ogrn_check_digit(first12)}"
