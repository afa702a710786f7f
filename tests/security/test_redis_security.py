"""Redis over TLS with an ACL user limited to the key prefix and channels, against a real redis-server."""

from __future__ import annotations

import logging

import pytest
import redis

import indiredis
from indiredis import tools
from indiredis.bridges import make_inditoredis
from tests.support.bridgethread import run_bridge
from tests.support.certs import make_certificates
from tests.support.fakeindi import FakeIndiServer
from tests.support.servers import RedisProcess, free_port, wait_for

DEF = (
    b'<defNumberVector device="Fake" name="N" state="Idle" perm="rw">'
    b'<defNumber name="X" format="%.0f" min="0" max="9" step="1">1</defNumber></defNumberVector>'
)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def secure_redis(certificates, tmp_path_factory):
    acl = tmp_path_factory.mktemp("acl") / "users.acl"
    acl.write_text(
        "user default off\n"
        "user admin on >admin-pw ~* &* +@all\n"
        # the bridge's user: only its key prefix and its two channels
        "user bridge on >bridge-pw resetkeys ~obs_* resetchannels &to_obs &from_obs +@all -@dangerous\n"
    )
    tls_port = free_port()
    extra = [
        "--tls-port",
        str(tls_port),
        "--tls-cert-file",
        str(certificates.server_cert),
        "--tls-key-file",
        str(certificates.server_key),
        "--tls-ca-cert-file",
        str(certificates.ca),
        "--tls-auth-clients",
        "optional",
        "--aclfile",
        str(acl),
    ]
    with RedisProcess(extra=extra) as proc:
        proc.tls_port = tls_port
        wait_for(lambda: _admin(proc, certificates).ping(), what="TLS port")
        yield proc


def _admin(proc, certificates) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=proc.tls_port,
        username="admin",
        password="admin-pw",
        ssl=True,
        ssl_ca_certs=str(certificates.ca),
        socket_timeout=5,
    )


def server_for(proc, certificates, **changes) -> indiredis.hosts.RedisServer:
    options = dict(
        host="127.0.0.1",
        port=proc.tls_port,
        username="bridge",
        password="bridge-pw",
        keyprefix="obs_",
        to_indi_channel="to_obs",
        from_indi_channel="from_obs",
        ssl=True,
        ssl_ca_certs=str(certificates.ca),
        ssl_certfile=str(certificates.client_cert),
        ssl_keyfile=str(certificates.client_key),
    )
    options.update(changes)
    return indiredis.redis_server(**options)


def test_bridge_works_through_tls_and_acl(secure_redis, certificates):
    server = server_for(secure_redis, certificates)
    admin = _admin(secure_redis, certificates)
    with FakeIndiServer() as fake:
        bridge = make_inditoredis(indiredis.indi_server("127.0.0.1", fake.port), server)
        with run_bridge(bridge):
            wait_for(lambda: bridge.ready, what="bridge over TLS")
            fake.send(DEF)
            wait_for(
                lambda: admin.smembers("obs_devices") == {b"Fake"}, what="keys written through TLS + ACL"
            )
            # a client with the same restricted user drives the device through tools
            client = tools.open_redis(server)
            assert client is not None and tools.devices(client, server) == ["Fake"]
            tools.newnumbervector(client, server, "N", "Fake", {"X": "5"})
            wait_for(lambda: b'<oneNumber name="X">5</oneNumber>' in fake.received, what="request relayed")
    # the ACL really limits the user to its prefix
    limited = redis.Redis(**indiredis.hosts.redis_connection_options(server))
    with pytest.raises(redis.exceptions.NoPermissionError):
        limited.get("indi_devices")
    admin.flushall()


@pytest.mark.parametrize(
    "case, changes, expected",
    [
        ("wrong password", {"password": "wrong"}, "invalid username-password pair"),
        ("untrusted certificate", {"ssl_ca_certs": None}, "certificate verify failed"),
        (
            "plain text to a TLS port",
            {"ssl": False, "ssl_ca_certs": "", "ssl_certfile": "", "ssl_keyfile": ""},
            "Redis unavailable",
        ),
    ],
)
def test_bad_credentials_give_one_clear_error_and_retries(
    secure_redis, certificates, caplog, case, changes, expected
):
    if changes.get("ssl_ca_certs", "x") is None:
        changes["ssl_ca_certs"] = str(certificates.other_ca)
    server = server_for(secure_redis, certificates, **changes)
    caplog.set_level(logging.WARNING, logger="indiredis")
    with FakeIndiServer() as fake:
        bridge = make_inditoredis(indiredis.indi_server("127.0.0.1", fake.port), server)
        with run_bridge(bridge) as thread:
            wait_for(
                lambda: "Redis unavailable" in caplog.text and "waiting for Redis" in bridge.status, what=case
            )
            # it keeps retrying (the state stays, no crash), and says so once
            wait_for(
                lambda: "retry in 1 s" in bridge.status or "retry in 2 s" in bridge.status, what="retries"
            )
            assert thread.alive and not bridge.ready
    lines = [r.getMessage() for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(lines) == 1 and expected in lines[0], lines
    assert "bridge-pw" not in caplog.text and "wrong" not in lines[0].replace("wrong version", "")
