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

_SEXA_SPLIT = re.compile(r"[:; ]+")
_SIGNS = ("+", "-")
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
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text:
        raise ValueError("empty number")
    if ":" not in text and ";" not in text and " " not in text:
        result = float(text)
    else:
        parts = _SEXA_SPLIT.split(text)
        if len(parts) > 3:  # (parts has at least 2: text is stripped)
            raise ValueError(f"not a number: {value!r}")
        first = parts[0]
        result = float(first.lstrip("+-") or "0")  # the sign applies to the whole value
        if result < 0:
            raise ValueError(f"not a number: {value!r}")
        scale = 1.0
        for part in parts[1:]:
            scale *= 60.0
            piece = float(part)
            if piece < 0 or part[:1] in _SIGNS:
                raise ValueError(f"not a number: {value!r}")
            result += piece / scale
        if first[:1] == "-":
            result = -result
    if math.isnan(result):
        raise ValueError(f"not a number: {value!r}")
    return result


def _format_sexagesimal(value: float, width: int, precision: int, left: bool) -> str:
    if not math.isfinite(value):  # a device may send inf; sexagesimal has no form for it
        return str(value)
    fracbase = _FRACBASE.get(precision, 60)
    degree_width = max(width - precision, 0)
    negative = value < 0
    n = int(abs(value) * fracbase + 0.5)
    degrees, fraction = divmod(n, fracbase)
    if negative and degrees == 0:
        head = "-0".rjust(degree_width)
    else:
        head = str(-degrees if negative else degrees).rjust(degree_width)
    if fracbase == 60:
        tail = f":{fraction:02d}"
    elif fracbase == 600:
        tail = f":{fraction // 10:02d}.{fraction % 10:1d}"
    elif fracbase == 3600:
        tail = f":{fraction // 60:02d}:{fraction % 60:02d}"
    elif fracbase == 36000:
        tail = f":{fraction // 600:02d}:{fraction % 600 // 10:02d}.{fraction % 10:1d}"
    else:
        tail = f":{fraction // 6000:02d}:{fraction % 6000 // 100:02d}.{fraction % 100:02d}"
    text = head + tail
    return text.ljust(width) if left else text


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
        return functools.partial(
            _format_sexagesimal, width=int(width or 0), precision=int(precision or 0), left=bool(left)
        )
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
