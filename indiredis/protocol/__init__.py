"""The INDI protocol, with no I/O: vocabulary, stream parsing, message model, numbers, XML output."""

from .document import parse_document
from .messages import Malformed, Member, Message
from .numbers import format_number, number_to_float
from .parser import IndiStreamParser, parse_message
from .vocabulary import (
    Action,
    BlobInstruction,
    Permission,
    PropertyState,
    SwitchRule,
    SwitchState,
    Tag,
    VectorKind,
)

__all__ = [
    "Action",
    "BlobInstruction",
    "IndiStreamParser",
    "Malformed",
    "Member",
    "Message",
    "Permission",
    "PropertyState",
    "SwitchRule",
    "SwitchState",
    "Tag",
    "VectorKind",
    "format_number",
    "number_to_float",
    "parse_document",
    "parse_message",
]
