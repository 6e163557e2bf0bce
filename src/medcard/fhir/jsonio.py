"""FHIR JSON in and out with every decimal kept as it was written.

R4 datatypes.html#decimal: a decimal's precision is part of its value (a lab result of
``0.40`` is not ``0.4``), and json.html says decimals are written as they were received.
A float cannot keep that (``105.00`` would come back ``105.0``, ``1E-22`` as ``1e-22``,
``66.899999999999991`` loses digits), so numbers with a fraction or an exponent are
read as :class:`Number`, a :class:`decimal.Decimal` that remembers its text, and
written back from that text byte for byte.  Integers stay ``int``.

Reading is strict first (orjson: no NaN, valid UTF-8, no lone surrogates), then
lexical (the standard library's scanner, which hands every number's text over).
"""

from __future__ import annotations

import decimal
import json
from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError
_INT64 = (-(2**63), 2**64 - 1)  # what orjson writes as a JSON integer


class Number(decimal.Decimal):
    """A JSON number with its text: compares and computes as a Decimal, prints as sent."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> Number:
        self = super().__new__(cls, text)
        self.text = text
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.text,))

    def __copy__(self) -> Number:
        return self

    def __deepcopy__(self, memo: Any) -> Number:
        return self


def _int(text: str) -> int | Number:
    value = int(text)
    # beyond 64 bits orjson cannot write an int; no FHIR integer is that large, but a
    # decimal may be written without a fraction
    return value if _INT64[0] <= value <= _INT64[1] else Number(text)


def _no_constant(name: str) -> Any:  # pragma: no cover - orjson refuses these first
    raise ValueError(f"{name} is not a JSON number")


def check(data: bytes | str) -> Any:
    """Strict parse (orjson); raises :data:`JSONDecodeError`.  Numbers come back as floats."""
    return orjson.loads(data)


def lexical(data: bytes | str) -> Any:
    """Parse JSON already known to be valid, keeping each decimal's text."""
    text = bytes(data).decode("utf-8") if not isinstance(data, str) else data
    try:
        return json.loads(text, parse_float=Number, parse_int=_int, parse_constant=_no_constant)
    except RecursionError:  # orjson reads 1,024 levels, the standard library fewer
        raise JSONDecodeError("JSON nests too deeply", text, 0) from None


def loads(data: bytes | str) -> Any:
    """Strict and lexical: what request bodies and stored content are read with."""
    check(data)
    return lexical(data)


def _default(value: Any) -> Any:
    if isinstance(value, Number):
        return orjson.Fragment(value.text)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} is not a JSON number")
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any, option: int | None = None) -> bytes:
    """orjson, writing a :class:`Number` (or any Decimal) as its exact text."""
    return orjson.dumps(value, default=_default, option=option)
