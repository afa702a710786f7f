"""The Redis store against a real redis-server: key layout, logs, deletions, BLOB files."""

from __future__ import annotations

import asyncio
import base64
import json
import zlib

import pytest
import redis.asyncio as aioredis

import indiredis
from indiredis import tools
from indiredis.links.client_side.redisside import aclose
from indiredis.protocol import IndiStreamParser, Message
from indiredis.store import RedisStore


def messages(xml: str) -> list[Message]:
    events = IndiStreamParser().feed(xml.encode())
    assert all(isinstance(e, Message) for e in events), events
    return events


@pytest.fixture
def apply(redis_proc):
    def _apply(store: RedisStore, xml: str) -> None:
        async def run() -> None:
            conn = aioredis.Redis(host="127.0.0.1", port=redis_proc.port)
            try:
                await store.apply(conn, messages(xml))
            finally:
                await aclose(conn)

        asyncio.run(run())

    return _apply


DEFS = """
<defNumberVector device="Tel" name="EQ" label="Eq. coords" group="Main" state="Idle" perm="rw" timeout="60" timestamp="2026-01-01T00:00:00">
 <defNumber name="RA" label="RA (hh:mm:ss)" format="%010.6m" min="0" max="24" step="0">12.5</defNumber>
 <defNumber name="DEC" label="DEC" format="%9.6m" min="-90" max="90" step="0">-0.5</defNumber>
</defNumberVector>
<defSwitchVector device="Tel" name="CONNECTION" state="Idle" perm="rw" rule="OneOfMany" timestamp="2026-01-01T00:00:00">
 <defSwitch name="CONNECT">Off</defSwitch><defSwitch name="DISCONNECT">On</defSwitch>
</defSwitchVector>
<defLightVector device="Tel" name="STATUS" state="Idle"><defLight name="L1">Idle</defLight></defLightVector>
<defTextVector device="Cam" name="INFO" state="Ok" perm="ro"><defText name="T">hello</defText></defTextVector>
<defBLOBVector device="Cam" name="CCD1" state="Idle" perm="ro"><defBLOB name="IMG"/></defBLOBVector>
"""  # noqa: E501 - INDI XML samples, one message per line


def test_definitions_build_the_key_space(apply, rconn, redis_host, tmp_path):
    store = RedisStore(redis_host, blob_folder=str(tmp_path))
    apply(store, DEFS)
    assert tools.devices(rconn, redis_host) == ["Cam", "Tel"]
    assert tools.properties(rconn, redis_host, "Tel") == ["CONNECTION", "EQ", "STATUS"]
    assert tools.elements(rconn, redis_host, "EQ", "Tel") == ["DEC", "RA"]
    attrs = tools.attributes_dict(rconn, redis_host, "EQ", "Tel")
    assert attrs == {
        "device": "Tel",
        "name": "EQ",
        "label": "Eq. coords",
        "group": "Main",
        "state": "Idle",
        "perm": "rw",
        "timeout": "60",
        "timestamp": "2026-01-01T00:00:00",
        "vector": "NumberVector",
    }
    ra = tools.elements_dict(rconn, redis_host, "RA", "EQ", "Tel")
    assert ra["formatted_number"] == "  12:30:00" and ra["float_number"] == "12.5"
    assert (
        ra["float_max"] == "24.0"
        and ra["min"] == "0"
        and ra["format"] == "%010.6m"
        and ra["label"] == "RA (hh:mm:ss)"
    )
    assert tools.attributes_dict(rconn, redis_host, "CONNECTION", "Tel")["rule"] == "OneOfMany"
    light = tools.attributes_dict(rconn, redis_host, "STATUS", "Tel")
    assert "timeout" not in light and light["label"] == "STATUS"
    assert tools.attributes_dict(rconn, redis_host, "CCD1", "Cam")["blobs"] == "Enabled"
    assert tools.elements_dict(rconn, redis_host, "T", "INFO", "Cam")["value"] == "hello"
    assert "value" not in tools.elements_dict(rconn, redis_host, "IMG", "CCD1", "Cam")
    assert [
        name for (name,) in [[d["name"]] for d in tools.property_elements(rconn, redis_host, "EQ", "Tel")]
    ] == ["DEC", "RA"]
    assert tools.logs(rconn, redis_host, 5, "devices")[0][1] == ["Cam", "Tel"]


def test_key_prefix_is_glued_without_separator(apply, redis_proc, rconn):
    server = indiredis.redis_server(host="127.0.0.1", port=redis_proc.port, keyprefix="obs1_")
    apply(RedisStore(server), DEFS)
    assert rconn.smembers("obs1_devices") == {b"Cam", b"Tel"}
    assert rconn.exists("obs1_elementattributes:RA:EQ:Tel")
    assert not rconn.exists("indi_devices")


def test_set_updates_values_and_logs_only_changes(apply, rconn, redis_host):
    store = RedisStore(redis_host, log_lengths={"numbervector": 3})
    apply(store, DEFS)
    for ra in ("13", "13", "14", "15", "16"):
        apply(
            store,
            f'<setNumberVector device="Tel" name="EQ" state="Busy" timestamp="t">'
            f'<oneNumber name="RA">{ra}</oneNumber></setNumberVector>',
        )
    ra = tools.elements_dict(rconn, redis_host, "RA", "EQ", "Tel")
    assert ra["value"] == "16" and ra["formatted_number"] == "  16:00:00" and ra["label"] == "RA (hh:mm:ss)"
    assert tools.attributes_dict(rconn, redis_host, "EQ", "Tel")["state"] == "Busy"
    history = tools.logs(rconn, redis_host, 10, "elementattributes", "RA", "EQ", "Tel")
    assert [entry[1]["value"] for entry in history] == ["16", "15", "14"]  # trimmed to 3, repeats not logged
    stamp = history[0][0]
    assert stamp[:2] == "20" and "T" in stamp
    # the DEC element was not in the set messages: logged once only
    assert len(tools.logs(rconn, redis_host, 10, "elementattributes", "DEC", "EQ", "Tel")) == 1


def test_set_for_undefined_property_is_ignored(apply, rconn, redis_host):
    store = RedisStore(redis_host)
    apply(store, '<setNumberVector device="X" name="Y"><oneNumber name="Z">1</oneNumber></setNumberVector>')
    assert tools.devices(rconn, redis_host) == []


def test_messages(apply, rconn, redis_host):
    store = RedisStore(redis_host)
    apply(
        store,
        '<message device="Tel" timestamp="2026-01-01T00:00:01" message="hello"/>'
        '<message message="sys" timestamp="T2"/>',
    )
    assert tools.last_message(rconn, redis_host, "Tel") == "2026-01-01T00:00:01 hello"
    assert tools.last_message(rconn, redis_host) == "T2 sys"
    assert tools.logs(rconn, redis_host, 1, "devicemessages", "Tel")[0][1] == ["2026-01-01T00:00:01", "hello"]


def test_del_property_and_device(apply, rconn, redis_host):
    store = RedisStore(redis_host)
    apply(store, DEFS)
    apply(store, '<delProperty device="Tel" name="EQ" timestamp="T"/>')
    assert "EQ" not in tools.properties(rconn, redis_host, "Tel")
    assert not rconn.exists(
        "indi_attributes:EQ:Tel", "indi_elements:EQ:Tel", "indi_elementattributes:RA:EQ:Tel"
    )
    assert tools.last_message(rconn, redis_host, "Tel") == "T Property EQ deleted from device Tel"
    apply(store, '<delProperty device="Tel" message="gone"/>')
    assert tools.devices(rconn, redis_host) == ["Cam"]
    assert not rconn.keys("indi_*:*Tel") or all(
        k.startswith(b"indi_devicemessages") or k.startswith(b"indi_logdata")
        for k in rconn.keys("indi_*Tel*")
    )
    assert tools.last_message(rconn, redis_host, "Tel").endswith(" gone")


def test_redefinition_drops_vanished_elements(apply, rconn, redis_host):
    store = RedisStore(redis_host)
    apply(store, DEFS)
    apply(
        store,
        '<defNumberVector device="Tel" name="EQ" state="Ok" perm="ro">'
        '<defNumber name="RA" format="%g" min="0" max="1" step="0">1</defNumber></defNumberVector>',
    )
    assert tools.elements(rconn, redis_host, "EQ", "Tel") == ["RA"]
    assert not rconn.exists("indi_elementattributes:DEC:EQ:Tel")


def test_a_new_run_starts_clear_of_an_earlier_runs_keys(apply, redis_proc, rconn, redis_host):
    """A restarted bridge's store clears what an earlier run wrote (its model never knew those keys):
    a property or device that vanished between the runs does not linger; logs and messages stay."""
    earlier = RedisStore(redis_host)
    apply(earlier, DEFS)
    apply(
        earlier,
        '<defTextVector device="Tel" name="GHOST" state="Ok" perm="ro"><defText name="G">x</defText>'
        '</defTextVector><defTextVector device="Gone" name="INFO" state="Ok" perm="ro">'
        '<defText name="T">x</defText></defTextVector><message device="Tel" message="hello"/>',
    )

    async def new_run() -> None:
        conn = aioredis.Redis(host="127.0.0.1", port=redis_proc.port)
        try:
            store = RedisStore(redis_host)
            await store.clear(conn)  # what the bridge does on its INDI side's Reset
            await store.apply(conn, messages(DEFS))
        finally:
            await aclose(conn)

    asyncio.run(new_run())
    assert tools.devices(rconn, redis_host) == ["Cam", "Tel"]
    assert tools.properties(rconn, redis_host, "Tel") == ["CONNECTION", "EQ", "STATUS"]
    state_keys = [key for key in rconn.keys("indi_*") if not key.startswith(b"indi_logdata:")]
    assert not [key for key in state_keys if b"GHOST" in key or key.endswith(b":Gone")], state_keys
    assert tools.last_message(rconn, redis_host, "Tel").endswith(" hello")
    assert rconn.llen("indi_logdata:devices") >= 2


def test_a_clients_enableblob_rewrites_the_blobs_attribute(apply, redis_proc, rconn, redis_host, tmp_path):
    """``blobs`` says whether BLOB data may arrive on this connection: it follows a client's enableBLOB
    (sent on to_indi, noted by the bridge's relay), logged like any attribute change."""
    store = RedisStore(redis_host, blob_folder=str(tmp_path))
    apply(store, DEFS)
    assert tools.attributes_dict(rconn, redis_host, "CCD1", "Cam")["blobs"] == "Enabled"

    async def note(xml: str) -> None:
        conn = aioredis.Redis(host="127.0.0.1", port=redis_proc.port)
        try:
            for message in messages(xml):
                await store.note_outgoing(conn, message)
        finally:
            await aclose(conn)

    asyncio.run(note('<enableBLOB device="Cam">Never</enableBLOB>'))
    assert tools.attributes_dict(rconn, redis_host, "CCD1", "Cam")["blobs"] == "Disabled"
    logged = [
        json.loads(entry.split(b" ", 1)[1])
        for entry in rconn.lrange("indi_logdata:attributes:CCD1:Cam", 0, -1)
    ]
    assert [entry["blobs"] for entry in logged[:2]] == ["Disabled", "Enabled"]
    asyncio.run(note('<enableBLOB device="Cam" name="CCD1">Only</enableBLOB>'))
    assert tools.attributes_dict(rconn, redis_host, "CCD1", "Cam")["blobs"] == "Enabled"
    asyncio.run(
        note('<enableBLOB device="Tel">Never</enableBLOB>')
    )  # no BLOB property there: nothing written
    assert rconn.llen("indi_logdata:attributes:CCD1:Cam") == 3


def test_blob_written_to_folder_and_never_to_redis(apply, rconn, redis_host, tmp_path):
    store = RedisStore(redis_host, blob_folder=str(tmp_path))
    apply(store, DEFS)
    payload = b"SIMPLE  = T" + bytes(range(256)) * 40
    compressed = base64.b64encode(zlib.compress(payload)).decode()
    apply(
        store,
        f'<setBLOBVector device="Cam" name="CCD1" state="Ok" timestamp="2026-01-01T00:00:02">'
        f'<oneBLOB name="IMG" size="{len(payload)}" format=".fits.z">{compressed}</oneBLOB></setBLOBVector>',
    )
    element = tools.elements_dict(rconn, redis_host, "IMG", "CCD1", "Cam")
    path = tmp_path / element["filepath"].rsplit("/", 1)[1]
    assert element["size"] == str(len(payload)) and element["format"] == ".fits.z"
    assert path.read_bytes() == payload and path.suffix == ".fits"
    dump = b"".join(rconn.dump(k) or b"" for k in rconn.keys("*"))
    assert compressed[:40].encode() not in dump


def test_published_after_keys_and_blob_data_left_out(redis_proc, redis_host, tmp_path):
    async def run() -> list[bytes]:
        conn = aioredis.Redis(host="127.0.0.1", port=redis_proc.port)
        pubsub = conn.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe("from_indi")
        store = RedisStore(redis_host, blob_folder=str(tmp_path))
        await store.apply(conn, messages(DEFS))
        await store.apply(
            conn,
            messages(
                '<setBLOBVector device="Cam" name="CCD1">'
                '<oneBLOB name="IMG" size="3" format=".bin">AQID</oneBLOB></setBLOBVector>'
            ),
        )
        received = []
        while len(received) < 6:
            item = await pubsub.get_message(timeout=5)
            if item:
                received.append(item["data"])
        await aclose(conn)
        return received

    received = asyncio.run(run())
    assert received[0].startswith(b"<defNumberVector") and b"12.5" in received[0]
    assert received[5].startswith(b"<setBLOBVector") and b"AQID" not in received[5]


def test_log_lengths_reject_unknown_key(redis_host):
    with pytest.raises(ValueError):
        RedisStore(redis_host, log_lengths={"bogus": 1})
    store = RedisStore(redis_host, log_lengths={"devices": 0})
    assert store.log_lengths["devices"] == 1


def test_hostile_names_stay_in_the_blob_folder(apply, rconn, redis_host, tmp_path):
    folder = tmp_path / "blobs"
    store = RedisStore(redis_host, blob_folder=str(folder))
    apply(
        store,
        '<defBLOBVector device="../../etc" name="/abs" state="Idle" perm="ro"><defBLOB name="..\\x"/>'
        "</defBLOBVector>",
    )
    apply(
        store,
        '<setBLOBVector device="../../etc" name="/abs" timestamp="../../t">'
        '<oneBLOB name="..\\x" size="3" format="/../../passwd">AQID</oneBLOB></setBLOBVector>',
    )
    element = tools.elements_dict(rconn, redis_host, "..\\x", "/abs", "../../etc")
    written = list(folder.iterdir())
    assert len(written) == 1 and str(written[0]) == element["filepath"]
    assert written[0].parent == folder.resolve()
    assert json.dumps(element)  # keys of the hostile device stay readable
