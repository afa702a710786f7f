"""Host descriptions: the original factories' positional order and defaults, checks made once, the
named-tuple API old callers use, and passwords never shown."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest

import indiredis
from indiredis.errors import IndiredisError
from indiredis.hosts import MQTTServer, RedisServer


def test_positional_order_and_defaults_of_the_original_api() -> None:
    assert indiredis.indi_server() == indiredis.indi_server("localhost", 7624)
    redis = indiredis.redis_server("h", 6380, 2, "pw", "obs_", "to", "from")
    assert (redis.host, redis.port, redis.db, redis.password, redis.keyprefix) == ("h", 6380, 2, "pw", "obs_")
    assert (redis.to_indi_channel, redis.from_indi_channel) == ("to", "from")
    assert indiredis.redis_server() == RedisServer("localhost", 6379, 0, "", "indi_", "to_indi", "from_indi")
    mqtt = indiredis.mqtt_server("broker", 1884, "user", "pw", "t", "f", "sc", "sd")
    assert mqtt.snoop_data_topic == "sd" and mqtt.username == "user"
    assert indiredis.mqtt_server("broker") == MQTTServer("broker", 1883)


def test_values_are_normalised() -> None:
    redis = indiredis.redis_server(port="6379", db="1", password=None)  # type: ignore[arg-type]  # as old callers pass
    assert (redis.port, redis.db, redis.password) == (6379, 1, "")


def test_tuple_style_use_still_works() -> None:
    host, port = indiredis.indi_server("example", 7000)
    assert (host, port) == ("example", 7000)
    redis = indiredis.redis_server()
    assert redis[0] == "localhost" and redis[1:3] == (6379, 0) and len(redis) == 17
    assert redis._fields[:2] == ("host", "port")
    assert redis._asdict()["keyprefix"] == "indi_"
    assert redis._replace(keyprefix="x_").keyprefix == "x_"


def test_frozen_hashable_picklable() -> None:
    redis = indiredis.redis_server(password="secret")
    with pytest.raises(AttributeError):
        redis.port = 1  # type: ignore[misc]  # the point of the test
    assert {redis: 1}[indiredis.redis_server(password="secret")] == 1
    assert pickle.loads(pickle.dumps(redis)) == redis


def test_passwords_are_masked_in_repr() -> None:
    assert "secret" not in repr(indiredis.redis_server(password="secret"))
    assert "password=***" in repr(indiredis.mqtt_server("b", password="secret"))
    assert "password=''" in repr(indiredis.mqtt_server("b"))


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: indiredis.indi_server(port=0), "out of range"),
        (lambda: indiredis.indi_server(host=""), "host must be a non-empty string"),
        (lambda: indiredis.redis_server(db=-1), "db must be 0 or more"),
        (lambda: indiredis.redis_server(to_indi_channel=""), "to_indi_channel"),
        (lambda: indiredis.redis_server(ssl_certfile="c.pem", ssl=True), "both ssl_certfile and ssl_keyfile"),
        (lambda: indiredis.redis_server(ssl_ca_certs="ca.pem"), "ssl is not enabled"),
        (lambda: indiredis.mqtt_server("b", to_indi_topic="a/#"), "wildcards"),
        (lambda: indiredis.mqtt_server("b", to_indi_topic="x", from_indi_topic="x"), "must differ"),
        (lambda: indiredis.redis_server()._replace(port=70000), "out of range"),
    ],
)
def test_bad_values_are_refused(build: Callable[[], object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        build()


def test_the_redis_connection_kinds_are_keyword_fields_after_the_old_ones() -> None:
    assert indiredis.redis_server()._fields[-4:] == (
        "socket",
        "sentinels",
        "service_name",
        "sentinel_password",
    )
    local = indiredis.redis_server(socket="/run/redis/redis-server.sock")
    assert local.socket == "/run/redis/redis-server.sock" and local.sentinels == ()
    pairs = indiredis.redis_server(sentinels=[("s1", "26379"), ("::1", 26380)], service_name="central")  # type: ignore[list-item]  # as a caller may pass
    assert pairs.sentinels == (("s1", 26379), ("::1", 26380))
    text = indiredis.redis_server(sentinels="s1:26379, [::1]:26380,s3 [::2]", service_name="central")  # type: ignore[arg-type]  # as the INI gives it
    assert text.sentinels == (("s1", 26379), ("::1", 26380), ("s3", 26379), ("::2", 26379))
    assert text == pairs._replace(sentinels=text.sentinels)
    assert hash(text) and pickle.loads(pickle.dumps(text)) == text


def test_the_sentinel_password_is_masked() -> None:
    server = indiredis.redis_server(sentinels=(("s", 26379),), service_name="m", sentinel_password="hush")
    assert "hush" not in repr(server) and "sentinel_password=***" in repr(server)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"socket": "/s.sock", "sentinels": "s:1", "service_name": "m"}, "not both"),
        ({"socket": "/s.sock", "ssl": True}, "not for a Unix socket"),
        ({"sentinels": "s:26379"}, "need service_name"),
        ({"service_name": "m"}, "no sentinels"),
        ({"sentinel_password": "pw"}, "no sentinels"),
        ({"sentinels": "s:notaport", "service_name": "m"}, "not host:port"),
        ({"sentinels": "s:0", "service_name": "m"}, "out of range"),
        ({"sentinels": "::1:26379", "service_name": "m"}, "in brackets"),
        ({"sentinels": [("s", 1, 2)], "service_name": "m"}, "not a .host, port. pair"),
    ],
)
def test_bad_connection_kinds_are_refused(options: dict[str, object], reason: str) -> None:
    with pytest.raises(IndiredisError, match=reason):
        indiredis.redis_server(**options)  # type: ignore[arg-type]  # wrong on purpose
