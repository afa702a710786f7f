"""Configuration files: merging, secrets from files and systemd credentials, the shipped examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from indiredis.indiwsgi.auth import hash_password
from indiredis.service import config, examples

ETC = Path(__file__).parents[2] / "etc"


def test_service_file_overrides_common_key_by_key(tmp_path):
    (tmp_path / "common.ini").write_text("[redis]\nhost = db.example\nport = 7000\n")
    own = tmp_path / "inditoredis.ini"
    own.write_text("[redis]\nport = 7001\n[log_lengths]\nmessages = 9\n")
    settings = config.load("inditoredis", own)
    assert (settings.redis.host, settings.redis.port) == ("db.example", 7001)
    assert settings.log_lengths == {"messages": 9}
    assert settings.indi.port == 7624  # defaults fill the rest


def test_password_from_systemd_credentials(tmp_path, monkeypatch):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "redis-password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    own = tmp_path / "mqtttoredis.ini"
    own.write_text(
        "[service]\nmqtt_id = gui\n[redis]\npassword_file = redis-password\n"
        f"[mqtt]\npassword_file = {credentials / 'redis-password'}\n"
    )
    settings = config.load("mqtttoredis", own)
    assert settings.redis.password == "s3cret" and settings.mqtt.password == "s3cret"
    assert "s3cret" not in repr(settings.redis) and "s3cret" not in repr(settings.mqtt)


def test_shipped_examples_are_the_generated_ones():
    for name, text in examples.all_files().items():
        assert (ETC / name).read_text() == text, (
            f"etc/{name} is stale: run python3 -m indiredis.service.examples etc"
        )


def test_shipped_examples_are_valid(tmp_path):
    for service in config.SCHEMAS:
        for name in ("common.ini", f"{service}.ini"):
            (tmp_path / name).write_text((ETC / name).read_text())
        if service == "web":  # the web client always asks for a login: a user must be added first
            with pytest.raises(config.ConfigError, match="add one with indiredis-web --add-user"):
                config.load(service, tmp_path / "web.ini")
            with open(tmp_path / "web.ini", "a") as handle:
                handle.write(f"alice = operator:{hash_password('correct horse')}\n")
        settings = config.load(service, tmp_path / f"{service}.ini")
        assert settings.service == service


def test_no_two_shipped_mqtt_services_share_an_mqtt_id(tmp_path):
    """The client id is the MQTT id: two services with one id would take each other's connection over."""
    ids = {}
    for service, schema in config.SCHEMAS.items():
        if "mqtt_id" in schema.service:
            for name in ("common.ini", f"{service}.ini"):
                (tmp_path / name).write_text((ETC / name).read_text())
            ids[service] = config.load(service, tmp_path / f"{service}.ini").options["mqtt_id"]
    assert len(ids) == 4 and len(set(ids.values())) == 4, ids
    assert ids["inditomqtt"] == config.default_mqtt_id("inditomqtt")


@pytest.mark.parametrize(
    "host, expected",
    [
        ("observatory", "observatory-mqtttoport"),
        ("dome2.example.org", "dome2-mqtttoport"),
        ("odd+name#x", "odd-name-x-mqtttoport"),
        ("", "localhost-mqtttoport"),
    ],
)
def test_an_unset_mqtt_id_is_the_host_name_and_the_service(host, expected, tmp_path):
    assert config.default_mqtt_id("mqtttoport", host) == expected
    own = tmp_path / "mqtttoport.ini"
    own.write_text("[service]\nmqtt_id =\n")
    assert config.load("mqtttoport", own).options["mqtt_id"] == config.default_mqtt_id("mqtttoport")
    own.write_text("[service]\nmqtt_id = dome\n")
    assert config.load("mqtttoport", own).options["mqtt_id"] == "dome"


def test_web_users_come_from_the_users_file_beside_web_ini(tmp_path):
    """`indiredis-web --add-user` writes web-users.ini (so a packaged web.ini can be replaced by an
    upgrade without losing users), with web.ini's mode; it holds [users] only."""
    import subprocess
    import sys

    web = tmp_path / "web.ini"
    web.write_text((ETC / "web.ini").read_text())
    web.chmod(0o640)
    command = [str(Path(sys.executable).parent / "indiredis-web"), "--config", str(web), "--add-user"]
    for name, role in (("alice", "operator"), ("listen_port", "observer"), ("alice", "observer")):
        subprocess.run(
            command + [name, "--role", role],
            input="a long password\n",
            text=True,
            check=True,
            capture_output=True,
        )
    assert web.read_text() == (ETC / "web.ini").read_text()
    users = config.users_path(web)
    assert users == tmp_path / "web-users.ini" and oct(users.stat().st_mode & 0o777) == "0o640"
    settings = config.load("web", web)
    assert sorted(settings.users) == ["alice", "listen_port"]  # alice replaced, not doubled
    assert settings.users["alice"].role == "observer" and settings.options["listen_port"] == 8000
    users.write_text(users.read_text() + "[service]\nlisten_port = 1\n")
    with pytest.raises(config.ConfigError, match=r"web-users.ini: unknown section \[service\]"):
        config.load("web", web)


def test_web_service_ends_with_an_error_when_its_server_thread_ends(tmp_path):
    """waitress serves in a thread of its own: if that thread's loop ends, the service's run() fails
    (the daemon then exits with status 1 and systemd restarts it) instead of pinging the watchdog on."""
    import asyncio

    from indiredis.service.web import WebService
    from tests.support.servers import free_port

    (tmp_path / "web.ini").write_text(
        f"[service]\nlisten_host = 127.0.0.1\nlisten_port = {free_port()}\n"
        f"[users]\nalice = operator:{hash_password('correct horse')}\n"
    )
    service = WebService(config.load("web", tmp_path / "web.ini"))

    async def scenario() -> None:
        running = asyncio.ensure_future(service.run())
        while not service.ready:  # run() sets it once waitress listens, before its first await
            await asyncio.sleep(0)
        service._server.close()  # what an error inside waitress's loop amounts to: the loop ends
        with pytest.raises(RuntimeError, match="web server's thread ended"):
            await asyncio.wait_for(running, 10)

    asyncio.run(scenario())


def test_web_service_leaves_no_thread_behind_when_it_stops(tmp_path):
    """A reload that changes the configuration stops the web service and starts a new one in the same
    process: the old server's worker threads (8 + STREAMS_MAX, which waitress's close() leaves
    waiting for work) must end with it, or every such reload leaves that many more."""
    import asyncio
    import threading

    from indiredis.service.web import WebService
    from tests.support.servers import free_port, wait_for

    (tmp_path / "web.ini").write_text(
        f"[service]\nlisten_host = 127.0.0.1\nlisten_port = {free_port()}\n"
        f"[users]\nalice = operator:{hash_password('correct horse')}\n"
    )
    before = set(threading.enumerate())

    async def serve_then_stop() -> int:
        service = WebService(config.load("web", tmp_path / "web.ini"))
        running = asyncio.ensure_future(service.run())
        while not service.ready:
            await asyncio.sleep(0)
        serving = len(set(threading.enumerate()) - before)
        running.cancel()
        await asyncio.wait([running])
        return serving

    serving = asyncio.run(serve_then_stop())
    assert serving > 200  # the server's workers were there while it served
    wait_for(
        lambda: not [t for t in set(threading.enumerate()) - before if t.name.startswith("waitress")],
        timeout=10,
        what="the web server's threads to end",
    )


def test_buffer_size_bounds_both_directions_of_every_bridge(tmp_path):
    """[service] buffer_size: how much each direction holds while its far side is down."""
    from indiredis.service.catalog import build_bridge

    own = {
        "inditoredis": "",
        "driverstoredis": "drivers = indiserver\n",
        "inditomqtt": "mqtt_id = a\n",
        "driverstomqtt": "drivers = indiserver\nmqtt_id = b\n",
        "mqtttoredis": "mqtt_id = c\n",
        "mqtttoport": "mqtt_id = d\n",
    }
    for service, keys in own.items():
        path = tmp_path / f"{service}.ini"
        path.write_text(
            f"[service]\n{keys}buffer_size = 500\nblob_folder = {tmp_path / 'blobs'}\n"
            if config.SCHEMAS[service].writes_blobs
            else f"[service]\n{keys}buffer_size = 500\n"
        )
        bridge = build_bridge(config.load(service, path))
        assert (bridge.from_indi.maxsize, bridge.to_indi.maxsize) == (500, 500), service
    path = tmp_path / "inditoredis.ini"
    path.write_text("[service]\nbuffer_size = 10\n")
    with pytest.raises(config.ConfigError, match=r"buffer_size = 10 is out of range \(100-10000000\)"):
        config.load("inditoredis", path)
