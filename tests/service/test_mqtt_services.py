"""Every MQTT service from the shipped configuration files, as the package installs them, on one stock
mosquitto: a steady state, and two bridges given one id reported once instead of a reconnection storm."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from indiredis.service import config
from tests.support.daemons import start_daemon, stop_daemon
from tests.support.notifysocket import NotifySocket
from tests.support.servers import IndiServerProcess, MosquittoProcess, free_port, wait_for

ETC = Path(__file__).parents[2] / "etc"
MQTT_SERVICES = ("inditomqtt", "driverstomqtt", "mqtttoredis", "mqtttoport")
STEADY_SECONDS = 30


def set_key(text: str, section: str, key: str, value: object) -> str:
    """``text`` (a shipped INI file) with the commented default of ``key`` in ``section`` set."""
    head, found, rest = text.partition(f"[{section}]\n")
    assert found, section
    body, next_section, tail = rest.partition("\n[")
    body, count = re.subn(rf"^#{key} = .*$", f"{key} = {value}", body, count=1, flags=re.M)
    assert count == 1, (section, key)
    return head + found + body + next_section + tail


def installed_etc(folder: Path, indi_port: int, redis_port: int, broker_port: int) -> Path:
    """The shipped files in ``folder`` as the package installs them, the hosts pointed at the test's
    servers and the port and blob folder moved off the system's (nothing else changed)."""
    folder.mkdir()
    for ini in ETC.glob("*.ini"):
        shutil.copy(ini, folder / ini.name)
    common = (folder / "common.ini").read_text()
    for section, port in (("indi", indi_port), ("redis", redis_port), ("mqtt", broker_port)):
        common = set_key(set_key(common, section, "host", "127.0.0.1"), section, "port", port)
    (folder / "common.ini").write_text(common)
    port_ini = folder / "mqtttoport.ini"
    port_ini.write_text(set_key(port_ini.read_text(), "service", "listen_port", free_port()))
    redis_ini = folder / "mqtttoredis.ini"
    redis_ini.write_text(set_key(redis_ini.read_text(), "service", "blob_folder", folder.parent / "blobs"))
    return folder


def watch(seconds: float, trouble, what: str) -> None:
    """Watch for ``seconds``, failing as soon as ``trouble()`` says something (an observation window,
    not a wait for something to happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        problem = trouble()
        assert not problem, f"{what}: {problem}"
        time.sleep(0.2)


def test_every_shipped_mqtt_service_on_one_broker_stays_connected(redis_proc, tmp_path):
    with IndiServerProcess() as indiserver, MosquittoProcess() as broker:
        etc = installed_etc(tmp_path / "etc", indiserver.port, redis_proc.port, broker.port)
        for service in MQTT_SERVICES:
            (tmp_path / service).mkdir()  # each daemon's notification socket in a folder of its own
        sockets = {service: NotifySocket(tmp_path / service) for service in MQTT_SERVICES}
        procs = {s: start_daemon(s, etc / f"{s}.ini", sockets[s]) for s in MQTT_SERVICES}
        logs = {s: etc / f"{s}.log" for s in MQTT_SERVICES}
        try:
            for service, notify in sockets.items():
                wait_for(lambda n=notify: n.has("READY=1"), timeout=60, what=f"{service} READY=1")

            def trouble() -> str:
                lines = [
                    f"{s}: {line}"
                    for s, path in logs.items()
                    for line in path.read_text().splitlines()
                    if "unavailable" in line or "another client" in line
                ]
                lines += [line for line in broker.output().splitlines() if "already connected" in line]
                return "\n".join(lines)

            watch(STEADY_SECONDS, trouble, "a reconnection")
            connected = broker.output().count("New client connected")
            assert connected == len(MQTT_SERVICES), broker.output()
            for service in MQTT_SERVICES:
                assert f" as {config.default_mqtt_id(service)} " in broker.output()
                assert logs[service].read_text().count(" INFO connected to MQTT broker") == 1
        finally:
            for proc in procs.values():
                stop_daemon(proc)
            for notify in sockets.values():
                notify.close()


def test_two_bridges_given_one_id_say_so_once_and_back_off(mosquitto_proc, tmp_path):
    common = f"[mqtt]\nhost = 127.0.0.1\nport = {mosquitto_proc.port}\n"
    procs, sockets, logs = [], [], []
    try:
        for name in ("first", "second"):
            folder = tmp_path / name
            folder.mkdir()
            (folder / "common.ini").write_text(common)
            own = folder / "mqtttoport.ini"
            own.write_text(
                f"[service]\nmqtt_id = twin\nlisten_host = 127.0.0.1\nlisten_port = {free_port()}\n"
            )
            sockets.append(NotifySocket(folder))
            procs.append(start_daemon("mqtttoport", own, sockets[-1]))
            logs.append(folder / "mqtttoport.log")
        cause = "likely cause: another client is using MQTT id twin"
        for log in logs:
            wait_for(lambda p=log: cause in p.read_text(), timeout=60, what=f"the cause in {log}")
        # the back-off is not reset by each short-lived connection: both wait its longest delay
        for notify in sockets:
            wait_for(
                lambda n=notify: any(
                    "retry in 5 s" in line for line in n.snapshot() if line.startswith("STATUS=")
                ),
                timeout=60,
                what="the longest retry delay",
            )
        takeovers = mosquitto_proc.output().count("already connected")
        wait_for(
            lambda: mosquitto_proc.output().count("already connected") >= takeovers + 4,
            timeout=60,
            what="the broker taking the id over some more times",
        )
        for log in logs:
            text = log.read_text()
            assert text.count(cause) == 1, text  # logged once, not once per reconnection
            assert text.count(" INFO connected to MQTT broker") <= 3, text
    finally:
        for proc in procs:
            stop_daemon(proc)
        for notify in sockets:
            notify.close()
