"""INDI number strings: parsing (decimal or sexagesimal) and printf / ``%m`` formatting.

The INDI protocol lets a number travel as ``"12.5"``, ``"12:30"``,
``"-5 30 15.5"`` or ``"12;30;00"``; a number format is a C printf format, or
the INDI-specific ``%<w>.<f>m`` sexagesimal format, where ``f`` selects the
precision: 3 ``:mm``, 5 ``:mm.m``, 6 ``:mm:ss``, 8 ``:mm:ss.s``, 9 ``:mm:ss.ss``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable

from ..errors import InvalidValue

_SEXA_SPLIT = re.compile(r"[:; ]+")
_SIGNS = ("+", "-")
# the sexagesimal form drivers send ("-12:30:15.5", "5:30"), read in one match; the general reading
# gives the same float for each (tests/protocol/test_numbers.py)
_PART = r"([0-9]+(?:\.[0-9]*)?)"
_USUAL_SEXAGESIMAL = re.compile(rf"(-?){_PART}:{_PART}(?::{_PART})?\Z")
#: the match of the usual sexagesimal form (sign, degrees, minutes, seconds or None), for a caller that
#: reads it inline as :func:`number_to_float` does
usual_sexagesimal = _USUAL_SEXAGESIMAL.match
# widths and precisions of at most two digits: a device-chosen "%9999999999d" must not allocate gigabytes
_SEXA_FORMAT = re.compile(r"^%(-?)0*(\d{0,2})(?:\.(\d{1,2}))?m$")
_PRINTF_FORMAT = re.compile(r"^%[-+ #0]*\d{0,2}(?:\.\d{0,2})?([diouxXeEfFgGs])$")

#: fraction base of each sexagesimal precision, as libindi's fs_sexa uses them
_FRACBASE = {9: 360000, 8: 36000, 6: 3600, 5: 600}


def number_to_float(value: str | float | int) -> float:
    """Return the float an INDI number string stands for.

    Accepts plain decimals and sexagesimal values whose parts are separated by
    ``:``, ``;`` or spaces; a leading minus sign applies to the whole value
    (``"-0:30"`` is -0.5).  Raises ``ValueError`` for anything else.
    """
    if value.__class__ is str:  # nearly always: the quick way in
        text = value.strip()
    elif isinstance(value, (int, float)):
        return float(value)
    else:
        text = str(value).strip()
    if not text:
        raise InvalidValue("empty number")
    if ":" not in text and ";" not in text and " " not in text:
        result = float(text)
    elif (usual := _USUAL_SEXAGESIMAL.match(text)) is not None:
        sign, degrees, minutes, seconds = usual.groups()
        result = float(degrees) + float(minutes) / 60.0  # as the general reading below adds them
        if seconds is not None:
            result += float(seconds) / 3600.0
        return -result if sign else result  # digits only: never NaN
    else:
        result = _sexagesimal_to_float(text, value)
    if math.isnan(result):
        raise InvalidValue(f"not a number: {value!r}")
    return result


def _sexagesimal_to_float(text: str, value: object) -> float:
    """The general reading of a sexagesimal ``text`` (stripped, with a separator), whatever its
    separators and signs; ``value`` is what the caller was given, named in the error."""
    parts = _SEXA_SPLIT.split(text)
    if len(parts) > 3:  # (parts has at least 2: text is stripped)
        raise InvalidValue(f"not a number: {value!r}")
    first = parts[0]
    result = float(first.lstrip("+-") or "0")  # the sign applies to the whole value
    if result < 0:
        raise InvalidValue(f"not a number: {value!r}")
    scale = 1.0
    for part in parts[1:]:
        scale *= 60.0
        piece = float(part)
        if piece < 0 or part[:1] in _SIGNS:
            raise InvalidValue(f"not a number: {value!r}")
        result += piece / scale
    return -result if first[:1] == "-" else result


#: the fraction part of each sexagesimal precision, from the count of its smallest units
_SEXAGESIMAL_TAILS: dict[int, Callable[[int], str]] = {
    60: lambda f: f":{f:02d}",
    600: lambda f: f":{f // 10:02d}.{f % 10:1d}",
    3600: lambda f: f":{f // 60:02d}:{f % 60:02d}",
    36000: lambda f: f":{f // 600:02d}:{f % 600 // 10:02d}.{f % 10:1d}",
    360000: lambda f: f":{f // 6000:02d}:{f % 6000 // 100:02d}.{f % 100:02d}",
}


#: the same as printf formats taking the degrees and the parts of the fraction, with the function that
#: splits the fraction into those parts (for the usual case: a value not below 0, right-justified)
_SEXAGESIMAL_PRINTF: dict[int, tuple[str, Callable[[int], tuple[int, ...]]]] = {
    60: (":%02d", lambda f: (f,)),
    600: (":%02d.%1d", (10).__rdivmod__),  # divmod(f, 10), without a Python frame
    3600: (":%02d:%02d", (60).__rdivmod__),
    36000: (":%02d:%02d.%1d", lambda f: (f // 600, f % 600 // 10, f % 10)),
    360000: (":%02d:%02d.%02d", lambda f: (f // 6000, f % 6000 // 100, f % 100)),
}


def _sexagesimal_formatter(width: int, precision: int, *, left: bool) -> Callable[[float], str]:
    """The function that renders a float as ``%<width>.<precision>m`` does (libindi's fs_sexa)."""
    fracbase = _FRACBASE.get(precision, 60)
    degree_width = max(width - precision, 0)
    tail = _SEXAGESIMAL_TAILS[fracbase]
    tail_format, split = _SEXAGESIMAL_PRINTF[fracbase]
    usual_format = (f"%{degree_width}d" if degree_width else "%d") + tail_format
    infinity = math.inf

    def render(value: float) -> str:
        if not left and 0 <= value < infinity:  # the usual case in one step (not NaN, not inf)
            degrees, fraction = divmod(int(value * fracbase + 0.5), fracbase)
            return usual_format % (degrees, *split(fraction))
        if not math.isfinite(value):  # a device may send inf; sexagesimal has no form for it
            return str(value)
        degrees, fraction = divmod(int(abs(value) * fracbase + 0.5), fracbase)
        if value < 0:
            head = str(-degrees) if degrees else "-0"
        else:
            head = str(degrees)
        text = head.rjust(degree_width) + tail(fraction)
        return text.ljust(width) if left else text

    return render


def format_number(value: str | float | int, indi_format: str) -> str:
    """Render ``value`` with an INDI number format.

    ``value`` may be a float or an INDI number string (sexagesimal accepted).
    Integer conversions (``%d``, ``%x`` ...) round to the nearest integer.  A
    format that is not a single printf or ``%m`` conversion falls back to
    ``str(float)`` rather than raising, since formats come from devices.
    """
    return number_formatter(indi_format)(number_to_float(value))


@functools.lru_cache(maxsize=1024)
def number_formatter(indi_format: str) -> Callable[[float], str]:
    """The function that renders a float with ``indi_format`` (see :func:`format_number`); the format
    is parsed once, as formats change only with a definition."""
    fmt = (indi_format or "").strip()
    sexa = _SEXA_FORMAT.match(fmt)
    if sexa:
        left, width, precision = sexa.groups()
        return _sexagesimal_formatter(int(width or 0), int(precision or 0), left=bool(left))
    printf = _PRINTF_FORMAT.match(fmt)
    if not printf:
        return _plain
    if printf.group(1) in "diouxX":
        return functools.partial(_printf_integer, fmt)
    return functools.partial(_printf, fmt)


def _plain(number: float) -> str:
    return repr(number) if math.isfinite(number) else str(number)


def _printf_integer(fmt: str, number: float) -> str:
    if not math.isfinite(number):
        return str(number)
    try:
        return fmt % int(round(number))
    except (ValueError, OverflowError, TypeError):
        return str(number)


def _printf(fmt: str, number: float) -> str:
    try:
        return fmt % number
    except (ValueError, OverflowError, TypeError):
        return str(number)
