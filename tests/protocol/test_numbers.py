"""INDI numbers: sexagesimal parsing and printf / %m formatting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indiredis.protocol import format_number, number_to_float, numbers


@pytest.mark.parametrize(
    "text, value",
    [
        ("12.5", 12.5),
        ("12:30:15.5", 12 + 30 / 60 + 15.5 / 3600),
        ("-5 30", -5.5),
        ("-0:30", -0.5),
        ("12;30", 12.5),
        ("1e3", 1000.0),
        (" 7 ", 7.0),
        ("+3:15", 3.25),
        ("0:0:36", 0.01),
    ],
)
def test_number_to_float(text, value):
    assert number_to_float(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "nan", "1:-2", "12:xx"])
def test_number_to_float_rejects(text):
    with pytest.raises(ValueError):
        number_to_float(text)


@pytest.mark.parametrize(
    "value, fmt, text",
    [
        (12.5, "%010.6m", "  12:30:00"),
        (-0.5, "%9.6m", " -0:30:00"),
        (12.504305555, "%10.8m", "12:30:15.5"),
        (12.504305555, "%11.9m", "12:30:15.50"),
        (12.5, "%5.3m", "12:30"),
        (12.51, "%7.5m", "12:30.6"),
        (-5.5, "%6.3m", " -5:30"),
        (23.99999, "%9.6m", " 24:00:00"),
        (3.14159, "%.3f", "3.142"),
        (3.14159, "%8.2f", "    3.14"),
        (1234.5, "%e", "1.234500e+03"),
        (1.5, "%g", "1.5"),
        (7.6, "%d", "8"),
        (255, "%x", "ff"),
        ("12:30", "%.2f", "12.50"),
    ],
)
def test_format_number(value, fmt, text):
    assert format_number(value, fmt) == text


def test_bad_format_falls_back_to_plain_number():
    assert format_number(1.5, "%q") == "1.5"
    assert format_number(1.5, "") == "1.5"


def test_infinity_in_a_sexagesimal_format_is_written_plainly():
    """A device may send inf; formatting it must not raise (one bad value would fail a whole batch)."""
    assert format_number("inf", "%010.6m") == "inf"
    assert format_number(float("-inf"), "%9.6m") == "-inf"


def test_formats_too_wide_to_be_sane_fall_back_without_allocating():
    """A device-chosen width such as %9999999999d must not make a 10 GB string."""
    assert format_number(5, "%9999999999d") == "5.0"
    assert format_number(5, "%.99999f") == "5.0"
    assert format_number(5, "%9999999999.6m") == "5.0"
    assert format_number(5, "%10.2f") == "      5.00"


PART = st.from_regex(r"[0-9]{1,3}(\.[0-9]{0,4})?", fullmatch=True)


@settings(max_examples=500, deadline=None)
@given(negative=st.booleans(), parts=st.lists(PART, min_size=2, max_size=3))
def test_the_usual_sexagesimal_reading_is_the_general_one(negative, parts):
    """'-12:30:15.5' is read in one match; the general reading (which ';' separators take) agrees."""
    text = ("-" if negative else "") + ":".join(parts)
    assert number_to_float(text) == number_to_float(text.replace(":", ";"))


@settings(max_examples=300, deadline=None)
@given(
    value=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    width=st.integers(0, 14),
    precision=st.sampled_from([3, 5, 6, 8, 9]),
    left=st.booleans(),
)
def test_sexagesimal_format_round_trips(value, width, precision, left):
    """What %m writes reads back within its last unit, at least as wide as asked."""
    text = format_number(value, f"%{'-' if left else ''}{width}.{precision}m")
    unit = {3: 1 / 60, 5: 1 / 600, 6: 1 / 3600, 8: 1 / 36000, 9: 1 / 360000}[precision]
    assert len(text) >= width
    assert abs(number_to_float(text) - value) <= unit / 2 + 1e-9 * max(1.0, abs(value))


@pytest.mark.parametrize("text", ["123:45:12.34", "-0:30", "5:30:00", "12.:30", "359:59:59.99"])
def test_the_usual_forms_take_the_one_match_reading(text):
    """What drivers send is read by the quick pattern (the rest takes the general reading)."""
    assert numbers._USUAL_SEXAGESIMAL.match(text) is not None


@settings(max_examples=500, deadline=None)
@given(
    value=st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=1e6),
    width=st.integers(0, 14),
    precision=st.sampled_from([3, 5, 6, 8, 9, 1]),
)
def test_the_usual_sexagesimal_rendering_is_the_general_one(value, width, precision):
    """A value not below 0, right-justified, is rendered in one printf step: the same text as the
    general rendering (degrees right-justified, then the tail of the fraction)."""
    fracbase = {3: 60, 5: 600, 6: 3600, 8: 36000, 9: 360000}.get(precision, 60)
    degrees, fraction = divmod(int(abs(value) * fracbase + 0.5), fracbase)
    general = str(degrees).rjust(max(width - precision, 0)) + numbers._SEXAGESIMAL_TAILS[fracbase](fraction)
    assert format_number(value, f"%{width}.{precision}m") == general
