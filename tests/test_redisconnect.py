"""The one Redis connection factory: every Redis client of the package is made in
indiredis/redisconnect.py, and it makes the three kinds from a redis_server value."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import redis
import redis.asyncio
import redis.sentinel

import indiredis
from indiredis import redisconnect
from indiredis.errors import HostError
from indiredis.hosts import redis_connection_options

PACKAGE = Path(indiredis.__file__).parent
CLIENT_CLASSES = {"Redis", "StrictRedis", "Sentinel", "ConnectionPool", "SentinelConnectionPool", "from_url"}


def _client_constructions(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in CLIENT_CLASSES:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {name}(...)")
    return found


def test_no_module_but_the_factory_makes_a_redis_client() -> None:
    found = [
        line
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "redisconnect.py"
        for line in _client_constructions(path)
    ]
    assert not found, "make Redis clients with indiredis.redisconnect:\n" + "\n".join(found)
    assert _client_constructions(PACKAGE / "redisconnect.py")  # the walk sees constructions at all


def test_describe_names_each_kind() -> None:
    assert redisconnect.describe(indiredis.redis_server("::1", 6380)) == "[::1]:6380"
    assert redisconnect.describe(indiredis.redis_server(socket="/run/r.sock")) == "unix:/run/r.sock"
    sentinel = indiredis.redis_server(sentinels=(("a", 26379), ("b", 26380)), service_name="central")
    assert redisconnect.describe(sentinel) == "sentinel central@a:26379,b:26380"


def test_the_kinds_of_client() -> None:
    tcp = redisconnect.redis_client(indiredis.redis_server("127.0.0.1", 6390, db=2), socket_timeout=5)
    assert tcp.connection_pool.connection_kwargs["port"] == 6390
    assert tcp.connection_pool.connection_kwargs["db"] == 2
    unix = redisconnect.redis_client(indiredis.redis_server(socket="/run/r.sock"))
    assert unix.connection_pool.connection_kwargs["path"] == "/run/r.sock"
    server = indiredis.redis_server(
        sentinels=(("127.0.0.1", 26379),), service_name="central", password="m", sentinel_password="s"
    )
    for client in (redisconnect.redis_client(server), redisconnect.async_redis_client(server)):
        pool = client.connection_pool
        assert pool.service_name == "central" and pool.is_master
        assert pool.connection_kwargs["password"] == "m"  # the master's
        assert [
            s.connection_pool.connection_kwargs["password"] for s in redisconnect.sentinel_clients(client)
        ] == ["s"]  # the sentinels' own
    assert isinstance(redisconnect.async_redis_client(indiredis.redis_server()), redis.asyncio.Redis)


def test_the_options_of_one_address() -> None:
    assert redis_connection_options(indiredis.redis_server(socket="/s"))["unix_socket_path"] == "/s"
    with pytest.raises(HostError, match="no single address"):
        redis_connection_options(indiredis.redis_server(sentinels="s:1", service_name="m"))  # type: ignore[arg-type]


def test_connection_errors_and_a_redis_that_is_no_sentinel() -> None:
    assert redisconnect.is_connection_error(redis.sentinel.MasterNotFoundError("none"))
    assert not redisconnect.is_connection_error(redis.exceptions.ResponseError("WRONGTYPE"))
    assert redisconnect.not_a_sentinel(
        redis.exceptions.ResponseError("unknown command 'SENTINEL', with args beginning with: 'MASTERS'")
    )
    assert not redisconnect.not_a_sentinel(redis.exceptions.ResponseError("unknown command 'FOO'"))
