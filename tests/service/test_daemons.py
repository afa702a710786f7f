"""The daemons under the systemd notify protocol, as real processes against real servers.

Each test binds a Unix datagram socket as ``$NOTIFY_SOCKET`` (what systemd
does), runs an ``indiredis-<service>`` script with a configuration folder of
its own, and reads what the daemon tells systemd.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from faultchain import STANDIN
from notifysocket import NotifySocket
from servers import RedisProcess, free_port, wait_for

BIN = Path(sys.executable).parent
WATCHDOG_USEC = 400_000


def write_config(folder: Path, service: str, common: str, own: str) -> Path:
    (folder / "common.ini").write_text(common)
    path = folder / f"{service}.ini"
    path.write_text(own)
    return path


def start_daemon(service: str, config: Path, notify: NotifySocket, **extra_env: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(WATCHDOG_USEC), **extra_env}
    log = open(config.parent / f"{service}.log", "wb")
    return subprocess.Popen([str(BIN / f"indiredis-{service}"), "--config", str(config)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def stop_daemon(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(20)


@pytest.fixture
def notify(tmp_path):
    sock = NotifySocket(tmp_path)
    yield sock
    sock.close()


def test_inditoredis_tells_systemd_ready_status_watchdog_reload_stopping(simulators, redis_proc, notify, tmp_path):
    config = write_config(tmp_path, "inditoredis",
                          f"[indi]\nhost = 127.0.0.1\nport = {simulators.port}\n[redis]\nhost = 127.0.0.1\n"
                          f"port = {redis_proc.port}\n",
                          f"[service]\nblob_folder = {tmp_path / 'blobs'}\n")
    proc = start_daemon("inditoredis", config, notify)
    try:
        wait_for(lambda: notify.has("READY=1"), timeout=20, what="READY=1")
        ready = notify.index("READY=1")
        assert any(line.startswith("STATUS=") and "connected to indiserver" in line for line in notify.snapshot())
        wait_for(lambda: any("devices" in l and "properties" in l and "2 devices" in l for l in notify.snapshot()
                             if l.startswith("STATUS=")), timeout=20, what="status with the simulators counted")
        wait_for(lambda: sum(l == "WATCHDOG=1" for l in notify.snapshot()[ready:]) >= 3, what="watchdog pings")
        mark = len(notify.snapshot())
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: notify.has("RELOADING=1", mark), what="RELOADING=1")
        wait_for(lambda: notify.has("READY=1", notify.index("RELOADING=1", mark)), what="READY=1 after reload")
        assert proc.poll() is None
    finally:
        status = stop_daemon(proc)
    assert status == 0
    assert notify.has("STOPPING=1", ready)
    log = (tmp_path / "inditoredis.log").read_text()
    assert "Traceback" not in log


def test_not_ready_while_redis_is_down_then_ready_when_it_starts(simulators, notify, tmp_path):
    redis_port = free_port()
    config = write_config(tmp_path, "inditoredis",
                          f"[indi]\nhost = 127.0.0.1\nport = {simulators.port}\n[redis]\nhost = 127.0.0.1\n"
                          f"port = {redis_port}\n", "[service]\nblob_folder =\n")
    proc = start_daemon("inditoredis", config, notify)
    try:
        wait_for(lambda: any("waiting for Redis: connection refused, retry in" in line for line in notify.snapshot()),
                 timeout=20, what="STATUS saying why it is not ready")
        assert not notify.has("READY=1") and proc.poll() is None
        with RedisProcess(port=redis_port):
            wait_for(lambda: notify.has("READY=1"), timeout=20, what="READY=1 once Redis is up")
            status = stop_daemon(proc)
    finally:
        stop_daemon(proc)
    assert status == 0


def _bridge_configs(kind: str, tmp_path: Path, redis_port: int, broker_port: int, indi_port: int) -> tuple[str, str]:
    common = (f"[indi]\nhost = 127.0.0.1\nport = {indi_port}\n[redis]\nhost = 127.0.0.1\nport = {redis_port}\n"
              f"[mqtt]\nhost = 127.0.0.1\nport = {broker_port}\n")
    own = {
        "driverstoredis": f"[service]\ndrivers = {STANDIN}\nblob_folder = {tmp_path}\n",
        "inditomqtt": "[service]\nmqtt_id = obs1\n",
        "driverstomqtt": f"[service]\ndrivers = {STANDIN}\nmqtt_id = obs2\n",
        "mqtttoredis": f"[service]\nmqtt_id = gui1\nblob_folder = {tmp_path}\n[log_lengths]\nmessages = 20\n",
        "mqtttoport": f"[service]\nmqtt_id = port1\nlisten_host = 127.0.0.1\nlisten_port = {free_port()}\n",
    }[kind]
    return common, own


@pytest.mark.parametrize("service", ["driverstoredis", "inditomqtt", "driverstomqtt", "mqtttoredis", "mqtttoport"])
def test_every_bridge_service_becomes_ready_and_stops_cleanly(service, simulators, redis_proc, mosquitto_proc,
                                                              notify, tmp_path):
    common, own = _bridge_configs(service, tmp_path, redis_proc.port, mosquitto_proc.port, simulators.port)
    proc = start_daemon(service, write_config(tmp_path, service, common, own), notify)
    try:
        wait_for(lambda: notify.has("READY=1"), timeout=20, what=f"{service} READY=1")
        wait_for(lambda: notify.has("WATCHDOG=1", notify.index("READY=1")), what="watchdog")
    finally:
        status = stop_daemon(proc)
    assert status == 0 and notify.has("STOPPING=1")


def test_web_service_serves_a_socket_passed_by_systemd(redis_proc, notify, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    config = write_config(tmp_path, "web", f"[redis]\nhost = 127.0.0.1\nport = {redis_proc.port}\n",
                          f"[service]\nblob_folder = {tmp_path}\nlisten_port = {free_port()}\n[users]\n")
    added = subprocess.run([str(BIN / "indiredis-web"), "--config", str(config), "--add-user", "alice"],
                           input="correct horse battery\n", capture_output=True, text=True, timeout=30)
    assert added.returncode == 0 and "correct horse" not in config.read_text(), added.stderr
    fd = listener.fileno()
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "LISTEN_FDS": "1"}
    # as systemd does: the socket is fd 3 and LISTEN_PID names the daemon (the launcher's pid, kept by exec)
    launcher = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
                "os.execv(sys.argv[2], sys.argv[2:])")
    proc = subprocess.Popen([sys.executable, "-c", launcher, str(fd), str(BIN / "indiredis-web"),
                             "--config", str(config)], env=env, pass_fds=[fd])
    listener.close()
    try:
        wait_for(lambda: notify.has("READY=1"), timeout=20, what="web READY=1")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            # answered by the web app, which asks for a login first
            assert response.status == 200 and response.url.endswith("/login") and b"password" in response.read()
    finally:
        status = stop_daemon(proc)
    assert status == 0


BAD_CONFIGS = [
    ("unknown key", "[service]\nblob_foldr = /tmp\n", "[service] unknown key 'blob_foldr'"),
    ("unknown section", "[servce]\n", "unknown section [servce]"),
    ("wrong type", "[indi]\nport = seventy\n", "port = 'seventy' is not a whole number"),
    ("bad boolean", "[redis]\nssl = maybe\n", "ssl = 'maybe' is not yes/no"),
    ("bad log level", "[service]\nlog_level = chatty\n", "log_level must be one of"),
    ("syntax", "port = 1\n", "File contains no section headers"),
    ("password twice", "[redis]\npassword = a\npassword_file = /etc/hostname\n", "not both"),
    ("unreadable password file", "[redis]\npassword_file = /nonexistent/secret\n", "cannot be read"),
    ("unknown log list", "[log_lengths]\nnothing = 3\n", "[log_lengths] unknown key 'nothing'"),
    ("negative log length", "[log_lengths]\nmessages = -1\n", "must not be negative"),
]


@pytest.mark.parametrize("case, text, expected", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_configuration_gives_one_line_and_status_78(case, text, expected, tmp_path):
    config = write_config(tmp_path, "inditoredis", "", text)
    result = subprocess.run([str(BIN / "indiredis-inditoredis"), "--config", str(config)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 78, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("service, text, expected", [
    ("inditomqtt", "[service]\n", "[service] mqtt_id is required"),
    ("driverstoredis", "[service]\ndrivers =\n", "drivers must not be empty"),
    ("inditomqtt", "[service]\nmqtt_id = a/b\n", "mqtt_id must be a non-empty name"),
])
def test_missing_or_invalid_required_keys(service, text, expected, tmp_path):
    config = write_config(tmp_path, service, "", text)
    result = subprocess.run([str(BIN / f"indiredis-{service}"), "--config", str(config)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 78 and expected in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_missing_configuration_file(tmp_path):
    result = subprocess.run([str(BIN / "indiredis-web"), "--config", str(tmp_path / "none.ini")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 78 and "no such configuration file" in result.stderr


def test_help_explains_every_option():
    for service in ("inditoredis", "driverstoredis", "inditomqtt", "driverstomqtt", "mqtttoredis", "mqtttoport",
                    "web"):
        text = subprocess.run([str(BIN / f"indiredis-{service}"), "--help"], capture_output=True, text=True,
                              timeout=30, check=True).stdout
        assert "--config" in text and "log_level" in text and "[service]" in text


def test_systemd_analyze_verify_passes_on_every_unit(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing (make test installs the systemd package)")
    units = sorted((Path(__file__).parents[2] / "systemd").glob("indiredis-*"))
    assert len(units) == 8
    for unit in units:  # the units name /usr/bin/indiredis-*: point them at this installation's scripts
        (tmp_path / unit.name).write_text(unit.read_text().replace("/usr/bin/indiredis-", f"{BIN}/indiredis-"))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
