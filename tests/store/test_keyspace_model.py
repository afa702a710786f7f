"""The key-space model without Redis: typed INDI events in, the Redis operations to apply out.

Nothing here connects to anything (the golden key-space test checks the same model through a real
Redis, byte for byte); the last test checks that the model's modules import no Redis client, no
socket and no event loop.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from indiredis.protocol import IndiStreamParser, number_to_float
from indiredis.protocol.messages import Message, StreamedBlob
from indiredis.store.keys import KeySpace
from indiredis.store.keyspace import KeySpaceModel
from indiredis.store.properties import number_value
from indiredis.store.writes import Command, Op, WriteBatch

T = "2026-01-01T00:00:01"
NUMBERS = (
    f'<defNumberVector device="Mount" name="EQ" label="Eq" group="Main" state="Idle" perm="rw" '
    f'timestamp="{T}"><defNumber name="RA" format="%010.6m" min="0" max="24" step="0">12:30:00'
    '</defNumber><defNumber name="DEC" format="%g">-5</defNumber></defNumberVector>'
)
BLOBS = (
    f'<defBLOBVector device="Cam" name="CCD1" state="Idle" perm="ro" timestamp="{T}">'
    '<defBLOB name="IMG" label="Image"/></defBLOBVector>'
)


def message(xml: str) -> Message:
    (event,) = IndiStreamParser().feed(xml.encode())
    assert isinstance(event, Message), event
    return event


def model(blobs_stored: bool = False) -> KeySpaceModel:
    return KeySpaceModel(KeySpace("indi_"), "from_indi", blobs_stored=blobs_stored)


def apply(keyspace: KeySpaceModel, *xml: str | Message) -> list[tuple[Any, ...]]:
    """The operations of one batch, readable: commands as they are, the script's writes as
    ("HSET", key, {fields}), ("HISTORY", key, json) and ("PUBLISH", data)."""
    writes = keyspace.writes()
    for each in xml:
        keyspace.apply(writes, message(each) if isinstance(each, str) else each, now="<now>")
    return readable(writes.take())


def readable(ops: list[Op]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for op in ops:
        match op:
            case Command(args=args):
                out.append(args)
            case WriteBatch(channel=channel, items=items):
                assert channel == "from_indi"
                for item in json.loads(items):
                    if len(item) == 5:
                        key, log_key, payload, _, fields = item
                        out.append(("HSET", key, dict(zip(fields[::2], fields[1::2], strict=True))))
                        out.append(("HISTORY", log_key, json.loads(payload)))
                    elif len(item) == 3:
                        out.append(("HISTORY", item[0], json.loads(item[1])))
                    else:
                        out.append(("PUBLISH", item[0]))
    return out


def test_a_definition_makes_its_sets_hashes_histories_order_and_publication() -> None:
    keyspace = model()
    ops = apply(keyspace, NUMBERS)
    commands = [op[:2] for op in ops if op[0] not in ("HSET", "HISTORY", "PUBLISH")]
    assert commands == [
        ("SADD", "indi_devices"),
        ("SADD", "indi_properties:Mount"),
        ("SADD", "indi_elements:EQ:Mount"),
        ("ZADD", "indi_propertyorder:Mount"),
        ("DEL", "indi_elementorder:EQ:Mount"),
        ("RPUSH", "indi_elementorder:EQ:Mount"),
    ]
    hashes = {op[1]: op[2] for op in ops if op[0] == "HSET"}
    assert hashes["indi_attributes:EQ:Mount"] == {
        "device": "Mount",
        "name": "EQ",
        "label": "Eq",
        "group": "Main",
        "timestamp": T,
        "vector": "NumberVector",
        "state": "Idle",
        "perm": "rw",
        "timeout": "0",
    }
    ra = hashes["indi_elementattributes:RA:EQ:Mount"]
    assert (ra["formatted_number"], ra["float_number"], ra["float_max"]) == (
        "  12:30:00",
        "12.5",
        "24.0",
    )
    histories = [op[1] for op in ops if op[0] == "HISTORY"]
    assert "indi_logdata:devices" in histories and "indi_logdata:properties:Mount" in histories
    assert ops[-1] == ("PUBLISH", NUMBERS)
    assert keyspace.device_count == keyspace.property_count == 1


def test_a_set_writes_only_what_changes_and_a_set_of_nothing_defined_is_only_published() -> None:
    keyspace = model()
    apply(keyspace, NUMBERS)
    ops = apply(
        keyspace,
        f'<setNumberVector device="Mount" name="EQ" state="Busy" timestamp="{T}">'
        '<oneNumber name="DEC">7.5</oneNumber></setNumberVector>',
    )
    assert [op[:2] for op in ops] == [
        ("HSET", "indi_attributes:EQ:Mount"),
        ("HISTORY", "indi_logdata:attributes:EQ:Mount"),
        ("HSET", "indi_elementattributes:DEC:EQ:Mount"),
        ("HISTORY", "indi_logdata:elementattributes:DEC:EQ:Mount"),
        ("PUBLISH", ops[-1][1]),
    ]
    assert ops[0][2] == {"state": "Busy", "timeout": "0", "timestamp": T}  # the dynamic fields only
    assert ops[2][2] == {"float_number": "7.5", "formatted_number": "7.5", "value": "7.5"}
    unknown = (
        '<setNumberVector device="Mount" name="NOPE"><oneNumber name="X">1</oneNumber></setNumberVector>'
    )
    assert [op[0] for op in apply(keyspace, unknown)] == ["PUBLISH"]
    no_stamp = (
        '<setNumberVector device="Mount" name="EQ"><oneNumber name="DEC">8</oneNumber></setNumberVector>'
    )
    assert apply(keyspace, no_stamp)[0][2]["timestamp"] == "<now>"


def test_a_message_and_its_history() -> None:
    ops = apply(model(), f'<message device="Mount" timestamp="{T}" message="slewing"/>')
    assert ops[0] == ("SET", "indi_devicemessages:Mount", f"{T} slewing")
    assert ops[1] == ("HISTORY", "indi_logdata:devicemessages:Mount", [T, "slewing"])
    assert ops[2][0] == "PUBLISH"


def test_del_property_and_del_device_remove_their_keys_and_note_it() -> None:
    keyspace = model()
    apply(keyspace, NUMBERS, BLOBS)
    ops = apply(keyspace, f'<delProperty device="Mount" name="EQ" timestamp="{T}"/>')
    assert ops[:4] == [
        (
            "DEL",
            "indi_attributes:EQ:Mount",
            "indi_elements:EQ:Mount",
            "indi_elementattributes:RA:EQ:Mount",
            "indi_elementattributes:DEC:EQ:Mount",
        ),
        ("SREM", "indi_properties:Mount", "EQ"),
        ("ZREM", "indi_propertyorder:Mount", "EQ"),
        ("DEL", "indi_elementorder:EQ:Mount"),
    ]
    assert ops[4] == ("HISTORY", "indi_logdata:properties:Mount", [])
    assert ops[5] == ("SET", "indi_devicemessages:Mount", f"{T} Property EQ deleted from device Mount")
    assert "EQ" not in keyspace.properties["Mount"]
    ops = apply(keyspace, f'<delProperty device="Cam" timestamp="{T}"/>')
    assert ("SREM", "indi_devices", "Cam") in ops
    assert ("HISTORY", "indi_logdata:devices", ["Mount"]) in ops
    assert "Cam" not in keyspace.properties


def test_a_blob_is_recorded_where_the_store_put_it() -> None:
    keyspace = model(blobs_stored=True)
    ops = apply(keyspace, BLOBS)
    assert {op[1]: op[2] for op in ops if op[0] == "HSET"}["indi_attributes:CCD1:Cam"]["blobs"] == "Enabled"
    whole = message(
        '<setBLOBVector device="Cam" name="CCD1" state="Ok"><oneBLOB name="IMG" size="3" format=".fits">'
        'AQID</oneBLOB><oneBLOB name="OTHER" size="1" format=".x">AA==</oneBLOB></setBLOBVector>'
    )
    stamp, targets = keyspace.blob_targets(whole, "<now>")
    assert (stamp, [m.name for m in targets]) == ("<now>", ["IMG"])  # OTHER is not defined
    stored = StreamedBlob(path="/blobs/Cam_CCD1_IMG.fits", size=3, stamp=stamp)
    members = tuple(
        m.__class__(m.tag, m.attrs, "", stored if m.name == "IMG" else None) for m in whole.members
    )
    ops = apply(keyspace, whole.__class__(whole.tag, whole.attrs, members, whole.raw))
    element = {op[1]: op[2] for op in ops if op[0] == "HSET"}["indi_elementattributes:IMG:CCD1:Cam"]
    assert element == {
        "name": "IMG",
        "label": "Image",
        "format": ".fits",
        "size": "3",
        "filepath": "/blobs/Cam_CCD1_IMG.fits",
        "timestamp": "<now>",
    }
    published = ops[-1][1]
    assert "AQID" not in published and 'name="IMG"' in published  # BLOB data is never published
    refused = StreamedBlob(problem="the blob folder is full")
    members = tuple(m.__class__(m.tag, m.attrs, "", refused) for m in whole.members[:1])
    ops = apply(keyspace, whole.__class__(whole.tag, whole.attrs, members, whole.raw))
    assert [op[1] for op in ops if op[0] == "HSET"] == ["indi_attributes:CCD1:Cam"]  # not recorded


def test_enable_blob_rewrites_the_blobs_attribute_where_it_changed() -> None:
    keyspace = model(blobs_stored=True)
    apply(keyspace, BLOBS)
    assert keyspace.note_outgoing(Message.enable_blob("Mount", "", "Never")) == []
    changed = keyspace.note_outgoing(Message.enable_blob("Cam", "", "Never"))
    assert not keyspace.blobs_enabled("Cam", "CCD1")
    ops = readable(keyspace.rewrite(changed))
    assert ops[0][0] == "HSET" and ops[0][2]["blobs"] == "Disabled"
    assert keyspace.note_outgoing(Message.enable_blob("Cam", "CCD1", "Never")) == []  # no change
    assert keyspace.note_outgoing(Message.enable_blob("Cam", "CCD1", "Also")) != []
    assert keyspace.blobs_enabled("Cam", "CCD1") and not keyspace.blobs_enabled("Cam", "OTHER")


def test_names_that_cannot_be_keys_change_nothing() -> None:
    keyspace = model()
    assert apply(keyspace, NUMBERS.replace('device="Mount"', 'device="a:b"')) == []
    assert keyspace.device_count == 0


def test_a_new_connection_writes_every_hash_whole_again() -> None:
    keyspace = model()
    apply(keyspace, NUMBERS)
    set_dec = (
        '<setNumberVector device="Mount" name="EQ"><oneNumber name="DEC">1</oneNumber></setNumberVector>'
    )
    assert len(apply(keyspace, set_dec)[0][2]) == 3  # state, timeout, timestamp
    keyspace.new_connection()
    assert len(apply(keyspace, set_dec)[0][2]) == 9  # every field of the attributes


def test_the_model_imports_no_redis_client_socket_or_event_loop() -> None:
    package = Path(__file__).resolve().parents[2] / "indiredis"
    seen: set[Path] = set()
    todo = [package / "store" / "keyspace.py"]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.ImportFrom):
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                target = base.joinpath(*(node.module or "").split("."))
                for candidate in (target.with_suffix(".py"), target / "__init__.py"):
                    if candidate.exists() and candidate.name != "__init__.py":
                        todo.append(candidate)
                continue
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in ("redis", "socket", "asyncio", "threading"), (path, name)
    assert package / "store" / "writes.py" in seen and package / "store" / "properties.py" in seen


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.from_regex(
            r"-?[0-9]{1,3}(\.[0-9]{0,3})?:[0-9]{1,2}(\.[0-9]{0,2})?(:[0-9]{1,2}(\.[0-9]{0,2})?)?",
            fullmatch=True,
        ),
        st.text(alphabet=st.sampled_from(list("0123456789:;. -+e")), max_size=12),
    )
)
def test_number_value_reads_numbers_as_number_to_float_does(text):
    """number_value reads the usual sexagesimal form inline: the same float as number_to_float."""
    element = {"format": "%010.6m"}
    number_value(element, text)
    try:
        expected = repr(number_to_float(text))
    except ValueError:
        expected = ""
    assert element["float_number"] == expected
    assert element["value"] == text
