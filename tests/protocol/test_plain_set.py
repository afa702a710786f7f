"""The tree-less reading of plain set*Vector messages gives exactly what ElementTree gives, or declines."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from hypothesis import given, settings
from hypothesis import strategies as st

from indiredis.protocol.messages import Message
from indiredis.protocol.parser import _PLAIN_SETS, parse_message, parse_plain_set

KINDS = ("Number", "Switch", "Text", "Light")
# text that is often plain and sometimes needs the full parser (entities, CR, tabs, odd characters)
plain = st.text(alphabet=st.sampled_from(list("ab12:;. -é>")), min_size=1, max_size=12)
hostile = st.text(alphabet=st.sampled_from(list("ab1 \t\n\r&<>\"'\u00a0\x01\ufffe")), max_size=6)
texts = st.one_of(plain, plain, plain, plain, hostile)
spaces = st.sampled_from(["", " ", "\n  ", "\t", "", " ", "\r\n"])


@st.composite
def set_messages(draw) -> bytes:
    kind = draw(st.sampled_from(KINDS))
    quote_mark = draw(st.sampled_from(['"', "'"]))

    def attr(name: str, value: str) -> str:
        if "&" in value or "<" in value or quote_mark in value:
            return f" {name}={quoteattr(value)}"
        return f" {name}{draw(st.sampled_from(['=', ' = ']))}{quote_mark}{value}{quote_mark}"

    attrs = attr("device", draw(texts)) + attr("name", draw(texts))
    if draw(st.booleans()):
        attrs += attr("state", draw(texts))
    members = ""
    for _ in range(draw(st.integers(0, 4))):
        text = draw(texts).replace("&", "&amp;").replace("<", "&lt;")
        extra = attr("format", draw(texts)) if draw(st.booleans()) else ""
        close = "/>" if draw(st.integers(0, 9)) == 0 else f">{text}</one{kind}>"
        members += f"{draw(spaces)}<one{kind}{attr('name', draw(texts))}{extra}{draw(spaces)}{close}"
    return f"<set{kind}Vector{attrs}>{members}{draw(spaces)}</set{kind}Vector>".encode()


def summary(message: Message) -> tuple:
    return (message.tag, dict(message.attrs), [(m.tag, dict(m.attrs), m.text) for m in message.members])


@settings(max_examples=500, deadline=None)
@given(set_messages())
def test_plain_reading_agrees_with_elementtree(raw):
    tag = raw[1 : raw.index(b"V") + 6]
    fast = parse_plain_set(raw, _PLAIN_SETS[tag])
    if fast is not None:
        full = parse_message(raw)
        assert isinstance(full, Message), full
        assert summary(fast) == summary(full)
        assert fast.raw == raw


def test_typical_driver_message_takes_the_plain_reading():
    raw = (
        b'<setNumberVector device="Mount" name="EQ" state="Ok" timeout="60" '
        b'timestamp="2026-01-01T00:00:00">\n'
        b'  <oneNumber name="RA">\n 12:30:00\n  </oneNumber>\n  <oneNumber name="DEC">-5 30</oneNumber>\n'
        b"</setNumberVector>"
    )
    assert parse_plain_set(raw, _PLAIN_SETS[b"setNumberVector"]) is not None


def test_malformed_messages_are_declined():
    shape = _PLAIN_SETS[b"setNumberVector"]
    for raw in (
        b'<setNumberVector device="M" name="N" device="x"></setNumberVector>',  # repeated attribute
        b'<setNumberVector device="M" name="N"><oneText name="X">1</oneText></setNumberVector>',
        b'<setNumberVector device="M" name="N"><oneNumber>1</oneNumber></setNumberVector>',
        b'<setNumberVector device="M"><oneNumber name="X">1</oneNumber></setNumberVector>',
        b'<setNumberVector device="M" name="N"><oneNumber name="X">\xff</oneNumber></setNumberVector>',
    ):
        assert parse_plain_set(raw, shape) is None, raw


def test_what_expat_refuses_is_never_read_plainly():
    """Unicode white space where XML allows only its own, and "]]>" in text, are refused by expat:
    the plain reading must decline them too, so that the full parser reports them."""
    shape = _PLAIN_SETS[b"setNumberVector"]
    for raw in (
        '<setNumberVector device="M" name="N"><oneNumber\u00a0name="X">1</oneNumber></setNumberVector>',
        '<setNumberVector device="M"\u00a0name="N"><oneNumber name="X">1</oneNumber></setNumberVector>',
        '<setNumberVector device="M" name="N"><oneNumber name="X">1</oneNumber\u2028></setNumberVector>',
        '<setNumberVector device="M" name="N"\u3000><oneNumber name="X">1</oneNumber></setNumberVector>',
        '<setNumberVector device="M" name="N"><oneNumber name="X">1]]>2</oneNumber></setNumberVector>',
    ):
        data = raw.encode()
        assert parse_plain_set(data, shape) is None, raw
        assert not isinstance(parse_message(data), Message), raw
