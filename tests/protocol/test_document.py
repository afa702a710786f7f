"""parse_document: every message of a whole payload, and what was skipped, an unfinished end included."""

from __future__ import annotations

from indiredis.protocol import Message
from indiredis.protocol.document import parse_document


def test_parse_document() -> None:
    data = Message.get_properties().raw + b"<bogus/>" + Message.ping_reply("1").raw + b"<message"
    messages, problems = parse_document(data)
    assert messages == [Message.get_properties(), Message.ping_reply("1")]
    assert [p.reason.split(" ")[0] for p in problems] == ["unknown", "incomplete"]
    assert parse_document(b"") == ([], [])


def test_parse_document_honours_the_size_limit() -> None:
    big = Message.indi_message("x" * 1000).raw
    messages, problems = parse_document(big + Message.ping_reply("2").raw, max_message_size=200)
    assert messages == [Message.ping_reply("2")]
    assert len(problems) == 1
