"""Property-based fuzzing of the Redis store with hostile messages, against a real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import garbage, model_messages

from indiredis.links.client_side.redisside import aclose
from indiredis.protocol import IndiStreamParser, Message
from indiredis.store import RedisStore

KNOWN = (
    "devices",
    "properties:",
    "attributes:",
    "elements:",
    "elementattributes:",
    "messages",
    "devicemessages:",
    "logdata:",
    "getProperties",
    "propertyorder:",
    "elementorder:",
    "heartbeat",
)


@pytest.fixture(scope="module")
def module_redis():
    from tests.support.servers import RedisProcess

    with RedisProcess() as proc:
        yield proc


hostile_blobs = st.builds(
    lambda dev, size, fmt, data: (
        f'<defBLOBVector device="{dev}" name="B" state="Idle" perm="ro"><defBLOB name="E"/></defBLOBVector>'
        f'<setBLOBVector device="{dev}" name="B">'
        f'<oneBLOB name="E" size="{size}" format="{fmt}">{data}</oneBLOB></setBLOBVector>'
    ).encode(),
    st.sampled_from(["cam", "../../x", "/abs", "a" * 300, "n:colon"]),
    st.sampled_from(["3", "-1", "99999999999", "x", ""]),
    st.sampled_from([".fits", ".fits.z", "../../../etc/passwd", "/abs.z", ".a\\b", ""]),
    st.sampled_from(["AQID", "!!!notbase64", "AQI", "eJzLSM3JyQcABiwCFQ==", "eJzLSM3JyQcA", ""]),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(st.one_of(model_messages.map(lambda m: m.xml()), garbage, hostile_blobs), min_size=1, max_size=8)
)
def test_store_survives_hostile_messages(module_redis, tmp_path_factory, chunks):
    folder = tmp_path_factory.mktemp("blobs")

    async def run() -> None:
        conn = aioredis.Redis(host="127.0.0.1", port=module_redis.port)
        try:
            import indiredis

            store = RedisStore(
                indiredis.redis_server(host="127.0.0.1", port=module_redis.port, keyprefix="fz_"),
                blob_folder=str(folder),
            )
            parser = IndiStreamParser(max_message_size=1 << 16)
            for chunk in chunks:
                messages = [e for e in parser.feed(chunk) if isinstance(e, Message)]
                await store.apply(conn, messages)
            for key in await conn.keys("*"):
                text = key.decode("utf-8", "replace")
                assert text.startswith("fz_") and text[3:].startswith(KNOWN), text
            await conn.flushdb()
        finally:
            await aclose(conn)

    asyncio.run(run())
    for path in folder.rglob("*"):
        assert path.parent == folder and not path.name.startswith(".incoming-")
