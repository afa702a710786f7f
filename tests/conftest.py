"""Shared fixtures: real servers on free loopback ports, and the redis_server tuple for them."""

from __future__ import annotations

import os

import pytest
import redis

import indiredis
from tests.support.servers import IndiServerProcess, MosquittoProcess, RedisProcess

# fixtures shared by several directories, found by pytest without an import in each test module
pytest_plugins = ["tests.support.webworld"]

# The simulators keep their configuration under $HOME/.indi; give the tests their own.
os.environ.setdefault("INDIREDIS_TEST_HOME", "")


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("home")
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    yield home
    if old is not None:
        os.environ["HOME"] = old


@pytest.fixture
def redis_proc():
    with RedisProcess() as proc:
        yield proc


@pytest.fixture
def redis_host(redis_proc):
    return indiredis.redis_server(host="127.0.0.1", port=redis_proc.port)


@pytest.fixture
def rconn(redis_proc):
    conn = redis.Redis(host="127.0.0.1", port=redis_proc.port, socket_timeout=5)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def simulators():
    with IndiServerProcess() as proc:
        yield proc


@pytest.fixture
def mosquitto_proc():
    with MosquittoProcess() as proc:
        yield proc
