"""Property-based fuzzing of the stream parser from an INDI 1.7 message model."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from strategies import ModelMessage, garbage, model_messages

from indiredis.protocol import IndiStreamParser, Malformed, Message

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse(data: bytes, chunk: int, limit: int = 1 << 20) -> tuple[list, int]:
    parser = IndiStreamParser(max_message_size=limit)
    events: list = []
    peak = 0
    for i in range(0, len(data), chunk):
        events += parser.feed(data[i : i + chunk])
        peak = max(peak, parser.buffered)
    return events, peak


def matches(message: Message, model: ModelMessage) -> bool:
    attrs = dict(model.attrs)
    if model.tag == "enableBLOB":
        attrs["instruction"] = "Also"
    return (
        message.tag == model.tag
        and dict(message.attrs) == attrs
        and [(m.tag, dict(m.attrs), m.text) for m in message.members]
        == [(t, dict(a), x) for t, a, x in model.members]
    )


@FUZZ
@given(st.lists(model_messages, min_size=1, max_size=6), st.integers(min_value=1, max_value=64))
def test_valid_messages_parse_to_their_model_at_any_split(models, chunk):
    data = b"\n".join(m.xml() for m in models)
    events, _ = parse(data, chunk)
    assert len(events) == len(models), [e for e in events if isinstance(e, Malformed)]
    for event, model in zip(events, models, strict=True):
        assert isinstance(event, Message) and matches(event, model)


def is_subsequence(needles: list[ModelMessage], haystack: list[Message]) -> bool:
    it = iter(haystack)
    return all(any(matches(m, n) for m in it) for n in needles)


@FUZZ
@given(
    st.lists(st.tuples(garbage, model_messages), min_size=1, max_size=5),
    st.integers(min_value=1, max_value=50),
)
def test_valid_messages_survive_garbage_between_them(pairs, chunk):
    data = b"".join(junk + model.xml() for junk, model in pairs)
    events, _ = parse(data, chunk)
    messages = [e for e in events if isinstance(e, Message)]
    assert is_subsequence([model for _, model in pairs], messages)


@FUZZ
@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=300))
def test_arbitrary_bytes_never_raise_and_memory_stays_bounded(data, chunk):
    limit = 256
    events, peak = parse(data, chunk, limit)
    assert peak <= limit + chunk + 32  # one read past the limit, at most
    assert all(isinstance(e, (Message, Malformed)) for e in events)


@FUZZ
@given(model_messages, st.integers(min_value=1, max_value=5000), st.integers(min_value=1, max_value=4096))
@example(  # found by hypothesis: the limit crossed inside a member tag held the message and the tag
    model=ModelMessage(
        "defTextVector",
        (("device", "0"), ("name", "0")),
        (
            ("defText", (("name", "&\u00a1\u00a1\u00a1\u00a1"), ("label", ""), ("format", "00\xa0\xa0")), ""),
            ("defText", (("name", "0000\U00010000\U00010000"),), "\u00a1\xa0\U00010000\U00010000"),
            ("defText", (("name", "000" + "\u00a1" * 8 + "\U00010000"), ("label", ""), ("format", "")), ""),
        ),
    ),
    size=839,
    chunk=1,
)
def test_huge_attribute_values_are_bounded(model, size, chunk):
    huge = ModelMessage(model.tag, model.attrs + (("x-huge", "A" * size),), model.members)
    limit = 1024
    events, peak = parse(huge.xml() + b'<message device="after"/>', chunk, limit)
    assert peak <= limit + chunk + 32  # one read past the limit, at most
    assert isinstance(events[-1], Message) and events[-1].device == "after"


@FUZZ
@given(st.integers(min_value=1, max_value=3000))
def test_deep_nesting_is_bounded(depth):
    data = (
        b"<setTextVector device='a' name='b'>"
        + b"<x>" * depth
        + b"</x>" * depth
        + b"</setTextVector><message device='z'/>"
    )
    events, peak = parse(data, 512, limit=8192)
    assert events[-1] == Message("message", {"device": "z"})
    assert peak <= 8192 + 513
