"""Parsing one whole document: a published string or an MQTT payload that holds complete messages."""

from __future__ import annotations

from .messages import BlobSinks, Malformed, Message
from .parser import DEFAULT_MAX_MESSAGE_SIZE, IndiStreamParser

#: a document is fed to the parser in pieces of this size, so that streamed BLOB data is never copied whole
FEED_SIZE = 1024 * 1024


def parse_document(
    data: bytes | memoryview, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, blobs: BlobSinks | None = None
) -> tuple[list[Message], list[Malformed]]:
    """The messages in ``data``, and a :class:`Malformed` for each piece that was skipped.

    Unlike a stream, a document ends with ``data``: a message left unfinished is reported as
    ``incomplete message``.  With ``blobs`` the data of ``setBLOBVector`` messages streams to the
    sinks it opens (see :class:`~.parser.IndiStreamParser`) instead of being held in the message.
    """
    parser = IndiStreamParser(max_message_size, blobs)
    messages: list[Message] = []
    problems: list[Malformed] = []
    view = memoryview(data)
    for start in range(0, len(view), FEED_SIZE):
        for event in parser.feed(bytes(view[start : start + FEED_SIZE])):
            if isinstance(event, Malformed):
                problems.append(event)
            else:
                messages.append(event)
    if parser.buffered:
        problems.append(Malformed("incomplete message", bytes(view[len(view) - parser.buffered :])))
    parser.close()  # drops a BLOB left streaming
    return messages, problems
