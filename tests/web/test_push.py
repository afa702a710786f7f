"""The event hub of the pages' streams: numbered changes, per device, a bounded ring, bounded streams."""

from __future__ import annotations

import threading

from indiredis.indiwsgi.push import Hub, stream
from indiredis.indiwsgi.state import message_kind


def test_a_page_gets_the_changes_of_its_device_and_of_every_page():
    hub = Hub(size=8)
    hub.publish("Mount", {"device": "Mount", "n": 1})
    hub.publish("CCD", {"device": "CCD", "n": 2})
    hub.publish("", {"status": {"ok": True}})
    found = hub.after(0, "Mount", 0.0)
    assert found is not None
    newest, frames = found
    assert newest == 3
    assert frames == [
        b'id: 1\ndata: {"device":"Mount","n":1}\n\n',
        b'id: 3\ndata: {"status":{"ok":true}}\n\n',
    ]


def test_a_page_behind_the_ring_is_told_to_read_everything_again():
    hub = Hub(size=4)
    for n in range(6):
        hub.publish("Mount", {"n": n})
    assert hub.after(1, "Mount", 0.0) is None
    kept = [b'id: %d\ndata: {"n":%d}\n\n' % (n + 1, n) for n in range(2, 6)]
    assert hub.after(2, "Mount", 0.0) == (6, kept)


def test_a_waiting_stream_wakes_on_a_change():
    hub = Hub()
    woke: list[object] = []
    waiter = threading.Thread(target=lambda: woke.append(hub.after(0, "Mount", 30.0)))
    waiter.start()
    hub.publish("Mount", b"{}")
    waiter.join(30)
    assert woke == [(1, [b"id: 1\ndata: {}\n\n"])]


def test_streams_are_bounded_and_counted_until_they_end():
    hub = Hub(streams_max=1)
    left = [False]
    chunks = stream(hub, "Mount", 0, b"{}", lambda: (0, b"{}"), lambda: left[0])
    assert hub.streams == 0  # not started: no slot taken
    assert next(chunks) == b"retry: 1000\nid: 0\ndata: {}\n\n"
    assert hub.streams == 1
    refused = stream(hub, "Mount", 0, b"{}", lambda: (0, b"{}"), lambda: False)
    assert list(refused) == [b"retry: 5000\n\n"]  # every slot taken: come back later
    hub.publish("Mount", b'{"n":1}')
    assert next(chunks) == b'id: 1\ndata: {"n":1}\n\n'
    left[0] = True
    assert list(chunks) == []
    assert hub.streams == 0  # the ended stream was counted out


def test_a_stream_ends_when_its_session_ends(monkeypatch):
    from indiredis.indiwsgi import push

    monkeypatch.setattr(push, "SESSION_CHECK", 0.0)
    hub = Hub()
    valid = [True]
    chunks = stream(hub, "Mount", 0, b"{}", lambda: (0, b"{}"), lambda: False, lambda: valid[0])
    next(chunks)
    hub.publish("Mount", b"{}")
    assert next(chunks) == b"id: 1\ndata: {}\n\n"
    valid[0] = False
    assert list(chunks) == []


def test_the_bridges_own_notes_are_told_apart():
    assert message_kind("Property DELAY deleted from device Focuser Simulator") == "bridge"
    assert message_kind("Device Focuser Simulator deleted") == "bridge"
    assert message_kind("[INFO] Exposure done, downloading image...") == "driver"


def test_two_values_sent_in_one_burst_are_both_pushed(world):
    """The patches are made from the published messages, not read back from the keys: a driver's two
    values of a property in one burst both reach the pages (with the store's formatting)."""
    import json

    from tests.support.servers import wait_for

    client, fake, _ = world
    cache = client.app.cache
    cache.start()
    wait_for(lambda: cache._subscribed, what="the watcher subscribed")
    start = cache.hub.seq
    fake.send(
        b'<setNumberVector device="Mount" name="COORD" state="Busy"><oneNumber name="RA">1.5</oneNumber>'
        b'<oneNumber name="DEC">10</oneNumber></setNumberVector>'
        b'<setNumberVector device="Mount" name="COORD" state="Ok"><oneNumber name="RA">2.25</oneNumber>'
        b'<oneNumber name="DEC">11</oneNumber></setNumberVector>'
    )

    def patches() -> list[dict]:
        found = cache.hub.after(start, "Mount", 0.1)
        assert found is not None
        events = [json.loads(frame.split(b"data: ", 1)[1]) for frame in found[1]]
        return [e["props"]["COORD"] for e in events if "COORD" in e.get("props", {})]

    got = wait_for(lambda: len(patches()) == 2 and patches(), what="two patches")
    assert [(p["state"], p["elements"]) for p in got] == [
        ("Busy", {"RA": "1:30:00", "DEC": "10.00"}),
        ("Ok", {"RA": "2:15:00", "DEC": "11.00"}),
    ]


def test_a_change_nobody_heard_reaches_the_pages_once_the_watcher_subscribes(world, rconn, redis_host):
    """A page reads its device's state, then the device changes before the watcher has subscribed to
    ``from_indi`` (the web process just started, or Redis was away): the change was never heard, so
    once subscribed the watcher pushes every device's whole state (it pushed the device list only, and
    the page kept the old value until the property changed again)."""
    import json

    from indiredis import tools
    from tests.support.servers import wait_for

    client, fake, _ = world
    cache = client.app.cache
    start = cache.hub.seq  # where the page's stream starts (its whole state was read before the change)
    fake.send(
        b'<setNumberVector device="Mount" name="COORD" state="Ok"><oneNumber name="RA">3.5</oneNumber>'
        b'<oneNumber name="DEC">-20</oneNumber></setNumberVector>'
    )
    wait_for(
        lambda: tools.elements_dict(rconn, redis_host, "DEC", "COORD", "Mount").get("value") == "-20",
        what="the change in the store",
    )
    cache.start()
    wait_for(lambda: cache._subscribed, what="the watcher subscribed")

    def whole_coordinates() -> dict | None:
        found = cache.hub.after(start, "Mount", 0.1)
        assert found is not None
        for frame in found[1]:
            event = json.loads(frame.split(b"data: ", 1)[1])
            if event.get("device") == "Mount" and "full" in event:
                return event["full"]["properties"]["COORD"]["elements"]
        return None

    elements = wait_for(whole_coordinates, what="Mount's whole state pushed")
    assert elements["DEC"] == "-20.00"
