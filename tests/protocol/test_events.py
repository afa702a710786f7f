"""Typed INDI events: one class per message kind, made by the parser and the constructors, with the
vocabulary's enums as fields; and the parser's named phases."""

from __future__ import annotations

from indiredis.protocol import IndiStreamParser
from indiredis.protocol.messages import (
    Definition,
    DefNumberVector,
    DefSwitchVector,
    DelProperty,
    EnableBLOB,
    GetProperties,
    IndiMessage,
    Message,
    NewSwitchVector,
    NewVector,
    PingReply,
    PingRequest,
    SetBLOBVector,
    SetNumberVector,
    SetVector,
    Vector,
)
from indiredis.protocol.parser import Phase
from indiredis.protocol.vocabulary import (
    Action,
    BlobInstruction,
    Permission,
    PropertyState,
    SwitchRule,
    SwitchState,
    Tag,
    VectorKind,
)
from tests.protocol.test_parser import EVERY_MESSAGE


def test_every_tag_has_its_class_and_the_parser_makes_it() -> None:
    messages = [event for event in IndiStreamParser().feed(EVERY_MESSAGE) if isinstance(event, Message)]
    assert len(messages) == 22
    for message in messages:
        assert type(message).__name__.lower() == message.tag.lower().replace("message", "indimessage")
        if isinstance(message, Vector):
            assert message.tag == message.KIND.tag(message.ACTION)
            assert (message.kind, message.action) == (message.KIND, message.ACTION)


def test_message_of_a_tag_is_its_class() -> None:
    for tag in Tag:
        message = Message(str(tag), {"device": "d", "name": "n"})
        assert type(message) is not Message
        assert message.tag == tag
    assert type(Message("somethingElse", {})) is Message  # no class: the base, as before


def test_plain_and_full_parser_make_the_same_class() -> None:
    plain = b'<setNumberVector device="T" name="EQ"><oneNumber name="RA">1</oneNumber></setNumberVector>'
    odd = plain.replace(b"><one", b"><!-- c --><one")
    first, second = IndiStreamParser().feed(plain)[0], IndiStreamParser().feed(odd)[0]
    assert type(first) is type(second) is SetNumberVector
    assert first == second


def test_match_dispatches_on_the_type() -> None:
    def what(message: Message) -> str:
        match message:
            case Definition():
                return "definition"
            case SetVector():
                return "values"
            case NewVector():
                return "request"
            case DelProperty() | IndiMessage():
                return "news"
            case GetProperties() | EnableBLOB() | PingRequest() | PingReply():
                return "control"
        return "unknown"

    messages = [event for event in IndiStreamParser().feed(EVERY_MESSAGE) if isinstance(event, Message)]
    assert [what(m) for m in messages] == ["definition"] * 5 + ["values"] * 5 + ["request"] * 4 + [
        "news"
    ] * 4 + ["control"] * 4


def test_typed_fields_are_the_vocabulary_enums() -> None:
    events = IndiStreamParser().feed(EVERY_MESSAGE)
    numbers = next(e for e in events if isinstance(e, DefNumberVector))
    assert numbers.state is PropertyState.OK and numbers.perm is Permission.RW
    assert numbers.rule is None and numbers.label == "EQ" and numbers.timeout == "60"
    assert numbers.members[0].format == "%010.6m" and numbers.members[1].label == "DEC"
    assert numbers.members[0].number_limits == {"min": "0", "max": "24", "step": "0"}
    switches = next(e for e in events if isinstance(e, DefSwitchVector))
    assert switches.rule is SwitchRule.ONE_OF_MANY
    assert [m.switch for m in switches.members] == [SwitchState.OFF, SwitchState.ON]
    assert switches.attributes() == {"state": "Idle", "perm": "rw", "timeout": "0", "rule": "OneOfMany"}
    blob = next(e for e in events if isinstance(e, SetBLOBVector))
    assert blob.changes() == {"state": "Ok"} and blob.timestamp is None
    assert (blob.members[0].size, blob.members[0].blob_format) == ("3", ".bin")
    enable = next(e for e in events if isinstance(e, EnableBLOB))
    assert enable.instruction is BlobInstruction.ALSO
    assert Message.enable_blob("Cam", "", "Only").instruction is BlobInstruction.ONLY
    assert Message("enableBLOB", {"device": "d", "instruction": "Sometimes"}).instruction is (  # type: ignore[attr-defined]
        BlobInstruction.NEVER
    )
    assert Message.ping_request("7").uid == "7"
    note = Message.indi_message("hello", "Tel", "2026-01-01T00:00:00")
    assert isinstance(note, IndiMessage) and (note.text, note.timestamp) == ("hello", "2026-01-01T00:00:00")
    weird = Message("setNumberVector", {"device": "d", "name": "n", "state": "Weird"})
    assert isinstance(weird, SetNumberVector) and weird.state is None  # typed: not a state
    assert weird.attrs["state"] == "Weird"  # kept as sent, for the store


def test_constructors_make_the_typed_class() -> None:
    assert isinstance(Message.get_properties("Tel"), GetProperties)
    request = Message.new_vector(VectorKind.SWITCH, "Tel", "CONNECTION", {"CONNECT": "On"})
    assert isinstance(request, NewSwitchVector) and request.ACTION is Action.NEW
    assert isinstance(Message.del_property("Tel", "EQ"), DelProperty)
    assert isinstance(Message.ping_reply("1"), PingReply)


class _Sink:
    def write(self, text: bytes) -> None:
        pass

    def close(self) -> object:
        from indiredis.protocol.messages import StreamedBlob

        return StreamedBlob(path="/x", size=1)

    def abort(self) -> None:
        pass


class _Sinks:
    def open(self, vector: object, element: object) -> _Sink:
        return _Sink()


def test_parser_phases_follow_the_table() -> None:
    parser = IndiStreamParser(blobs=_Sinks())  # type: ignore[arg-type]
    assert parser.state.phase is Phase.BETWEEN
    parser.feed(b'<setBLOBVector device="C" name="B">')
    assert parser.state.phase is Phase.IN_MESSAGE
    parser.feed(b'<oneBLOB name="B" size="1" format=".x">AAAA')
    assert parser.state.phase is Phase.IN_BLOB
    parser.feed(b"</oneBLOB>")
    assert parser.state.phase is Phase.IN_MESSAGE
    parser.feed(b"</setBLOBVector>")
    assert parser.state.phase is Phase.BETWEEN
    parser.feed(b'<setBLOBVector device="C" name="B"><oneBLOB name="B">AA')
    assert parser.state.phase is Phase.IN_BLOB
    parser.close()
    assert parser.state.phase is Phase.BETWEEN


def test_an_oversized_message_is_discarded_then_between() -> None:
    parser = IndiStreamParser(max_message_size=60)
    parser.feed(b'<defTextVector device="T" name="N"><defText name="A">' + b"x" * 100)
    assert parser.state.phase is Phase.DISCARDING
    events = parser.feed(b"</defText></defTextVector>")
    assert parser.state.phase is Phase.BETWEEN and "exceeds the limit" in str(events[0])
