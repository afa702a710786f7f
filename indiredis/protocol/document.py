"""Parsing one whole document: a published string or an MQTT payload that holds complete messages."""

from __future__ import annotations

from .messages import Malformed, Message
from .parser import DEFAULT_MAX_MESSAGE_SIZE, IndiStreamParser


def parse_document(
    data: bytes, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> tuple[list[Message], list[Malformed]]:
    """The messages in ``data``, and a :class:`Malformed` for each piece that was skipped.

    Unlike a stream, a document ends with ``data``: a message left unfinished is reported as
    ``incomplete message``.
    """
    parser = IndiStreamParser(max_message_size)
    messages: list[Message] = []
    problems: list[Malformed] = []
    for event in parser.feed(data):
        if isinstance(event, Malformed):
            problems.append(event)
        else:
            messages.append(event)
    if parser.buffered:
        problems.append(Malformed("incomplete message", data[-parser.buffered :]))
    return messages, problems
