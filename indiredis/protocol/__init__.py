"""The INDI protocol, with no I/O: stream parsing, message model, numbers, XML output."""

from .messages import Malformed, Member, Message
from .numbers import format_number, number_to_float
from .parser import IndiStreamParser, parse_message

__all__ = [
    "IndiStreamParser",
    "Malformed",
    "Member",
    "Message",
    "format_number",
    "number_to_float",
    "parse_message",
]
