"""The [redis] keys of the connection kinds: a Unix socket and Redis Sentinel, and the mixes refused."""

from __future__ import annotations

import pytest

from indiredis.service import config


def load(tmp_path, redis_section: str):
    path = tmp_path / "inditoredis.ini"
    path.write_text("[redis]\n" + redis_section)
    return config.load("inditoredis", path).redis


def test_a_unix_socket(tmp_path):
    server = load(tmp_path, "socket = /run/redis/redis-server.sock\n")
    assert server.socket == "/run/redis/redis-server.sock" and not server.sentinels


def test_sentinels(tmp_path):
    server = load(
        tmp_path,
        "sentinels = 10.0.0.1:26379, 10.0.0.2:26380 [::1]:26381 s4\n"
        "service_name = central\nsentinel_password = hush\npassword = master\n",
    )
    assert server.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26381), ("s4", 26379))
    assert (server.service_name, server.sentinel_password, server.password) == ("central", "hush", "master")


@pytest.mark.parametrize(
    ("section", "reason"),
    [
        ("socket = /s.sock\nsentinels = s:1\nservice_name = m\n", "not both"),
        ("socket = /s.sock\nssl = yes\n", "not for a Unix socket"),
        ("sentinels = s:26379\n", "need service_name"),
        ("service_name = m\n", "no sentinels"),
        ("sentinels = s:port\nservice_name = m\n", "not host:port"),
    ],
)
def test_mixed_kinds_are_configuration_errors(tmp_path, section, reason):
    with pytest.raises(config.ConfigError, match=rf"inditoredis.ini: \[redis\] .*{reason}"):
        load(tmp_path, section)


def test_the_sentinel_password_from_a_file(tmp_path):
    (tmp_path / "sentinel-secret").write_text("hush\n")
    server = load(
        tmp_path,
        f"sentinels = s1\nservice_name = central\nsentinel_password_file = {tmp_path / 'sentinel-secret'}\n",
    )
    assert server.sentinel_password == "hush" and server.password == ""
    with pytest.raises(
        config.ConfigError, match="give sentinel_password or sentinel_password_file, not both"
    ):
        load(
            tmp_path,
            "sentinels = s1\nservice_name = central\nsentinel_password = x\n"
            f"sentinel_password_file = {tmp_path / 'sentinel-secret'}\n",
        )
