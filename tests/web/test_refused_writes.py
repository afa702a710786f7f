"""A store that refuses writes (out of memory, read-only) but answers reads: the pages are still served
and the changes still pushed; only the history is not kept (and the journal says why)."""

from __future__ import annotations

import json

import pytest
import redis

from tests.support.servers import wait_for
from tests.web.test_history import coordinates


def patches(cache, start: int) -> list[dict]:
    found = cache.hub.after(start, "Mount", 0.1)
    assert found is not None
    return [json.loads(frame.split(b"data: ", 1)[1]) for frame in found[1]]


def test_a_store_out_of_memory_still_serves_the_pages_and_pushes_the_changes(
    world, redis_host, rconn, caplog
):
    client, fake, _ = world
    cache = client.app.cache
    cache.start()
    wait_for(lambda: cache._subscribed, what="the watcher subscribed")
    key = f"{redis_host.keyprefix}history:DEC:COORD:Mount"
    coordinates(fake, 10.0)
    wait_for(lambda: rconn.xlen(key) == 1, what="the history writer at work")
    rconn.config_set("maxmemory-policy", "noeviction")
    rconn.config_set("maxmemory", 1)
    try:
        with pytest.raises(redis.ResponseError, match="maxmemory"):
            rconn.set("probe", "x")
        start = cache.hub.seq
        for dec in (20.0, 21.0):  # the bridge cannot write either: its message is published here
            rconn.publish(
                redis_host.from_indi_channel,
                f'<setNumberVector device="Mount" name="COORD" state="Ok"><oneNumber name="RA">12.5'
                f'</oneNumber><oneNumber name="DEC">{dec}</oneNumber></setNumberVector>',
            )
        values = lambda: [  # noqa: E731
            e["props"]["COORD"]["elements"]["DEC"]
            for e in patches(cache, start)
            if "COORD" in e.get("props", {})
        ]
        assert wait_for(lambda: values() == ["20.00", "21.00"] and values(), what="both changes pushed")
        assert not any("cannot be reached" in json.dumps(e) for e in patches(cache, start))
        assert cache._subscribed and cache._watcher is not None and cache._watcher.is_alive()
        assert client.get("/device/Mount")[0].startswith("200")
        status, _, body = client.get("/api/device/Mount")
        assert status.startswith("200") and b"cannot be reached" not in body
        wait_for(lambda: "Redis refuses writes" in caplog.text, what="the refusal logged")
        assert rconn.xlen(key) == 1  # not kept while refused
        assert cache._subscribed and cache._watcher.is_alive()
        assert "cannot be reached" not in json.dumps(cache.status())
    finally:
        rconn.config_set("maxmemory", 0)


def test_a_bug_met_on_one_message_costs_that_message_only(world, redis_host, rconn, monkeypatch):
    client, _, _ = world
    cache = client.app.cache
    cache.start()
    wait_for(lambda: cache._subscribed, what="the watcher subscribed")
    feed = cache.changes.feed

    def buggy(xml: bytes) -> None:
        if b"BUG" in xml:
            raise RuntimeError("a bug")
        feed(xml)

    monkeypatch.setattr(cache.changes, "feed", buggy)
    start = cache.hub.seq
    rconn.publish(redis_host.from_indi_channel, '<message device="Mount" message="BUG"/>')
    rconn.publish(
        redis_host.from_indi_channel,
        '<setNumberVector device="Mount" name="COORD" state="Ok"><oneNumber name="DEC">30</oneNumber>'
        "</setNumberVector>",
    )
    wait_for(
        lambda: any("COORD" in e.get("props", {}) for e in patches(cache, start)), what="the next change"
    )
    assert cache._watcher is not None and cache._watcher.is_alive()
