"""The history of number elements by time (an addition to the key space), and its downsampled answer."""

from __future__ import annotations

import json

import redis

from indiredis.indiwsgi.history import HOURS, POINTS, read_history
from tests.support.servers import wait_for


def coordinates(fake, dec: float) -> None:
    fake.send(
        f'<setNumberVector device="Mount" name="COORD" state="Ok"><oneNumber name="RA">12.5</oneNumber>'
        f'<oneNumber name="DEC">{dec}</oneNumber></setNumberVector>'.encode()
    )


def test_values_are_kept_by_time_at_most_one_per_interval(world, redis_host, rconn):
    client, fake, _ = world
    client.app.cache.start()  # the watcher writes the history
    wait_for(lambda: client.app.cache._subscribed, what="the watcher subscribed")
    for dec in (10.0, 11.0, 12.0):
        coordinates(fake, dec)
    key = f"{redis_host.keyprefix}history:DEC:COORD:Mount"
    # the first value at once; of the two within the next second, the newest when the second is over
    entries = wait_for(lambda: len(rconn.xrange(key)) == 2 and rconn.xrange(key), what="two values kept")
    assert [float(fields[b"v"]) for _, fields in entries] == [10.0, 12.0]
    assert rconn.type(key) == b"stream"
    assert 0 < rconn.ttl(key) <= HOURS * 3600  # a removed device's history expires
    status, _, body = client.get("/api/history/Mount/COORD/DEC?hours=1")
    assert status.startswith("200")
    answer = json.loads(body)
    assert answer["count"] == 2
    assert [point[1:] for point in answer["points"]] == [[10.0, 10.0, 10.0], [12.0, 12.0, 12.0]]
    assert client.get("/api/history/Mount/COORD/DEC?hours=x")[0].startswith("400")


def test_a_long_history_is_downsampled_to_min_mean_max(redis_host, rconn: redis.Redis):
    key = "history:X:P:D"
    for second in range(3 * POINTS):
        rconn.xadd(key, {"v": repr(float(second % 3))}, id=f"{(1000 + second) * 1000}-0")
    answer = read_history(rconn, key, hours=1, now=1000 + 3 * POINTS)
    assert answer["count"] == 3 * POINTS
    assert len(answer["points"]) <= POINTS
    assert answer["points"][0][1:] == [0.0, 1.0, 2.0]  # the three values a point stands for
