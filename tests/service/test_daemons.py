"""The daemons under the systemd notify protocol, as real processes against real servers.

Each test binds a Unix datagram socket as ``$NOTIFY_SOCKET`` (what systemd
does), runs an ``indiredis-<service>`` script with a configuration folder of
its own, and reads what the daemon tells systemd.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from indiredis.service import config
from tests.support.bridgeprocess import STANDIN
from tests.support.daemons import BIN, inditoredis_common, start_daemon, stop_daemon, write_config
from tests.support.servers import RedisProcess, free_port, wait_for


def test_inditoredis_tells_systemd_status_ready_watchdog_then_stopping_in_order(
    simulators, redis_proc, notify, tmp_path
):
    config = write_config(
        tmp_path,
        "inditoredis",
        inditoredis_common(simulators.port, redis_proc.port),
        f"[service]\nblob_folder = {tmp_path / 'blobs'}\n",
    )
    proc = start_daemon("inditoredis", config, notify)
    try:
        wait_for(lambda: notify.has("READY=1"), timeout=20, what="READY=1")
        ready = notify.index("READY=1")
        before = notify.snapshot()[:ready]
        assert any(line.startswith("STATUS=") for line in before), (
            before
        )  # STATUS says what it does before READY
        assert any("connected to indiserver" in line for line in before if line.startswith("STATUS="))
        wait_for(
            lambda: any(
                "devices" in line and "properties" in line and "2 devices" in line
                for line in notify.snapshot()
                if line.startswith("STATUS=")
            ),
            timeout=20,
            what="status with the simulators counted",
        )
        wait_for(
            lambda: sum(line == "WATCHDOG=1" for line in notify.snapshot()[ready:]) >= 3,
            what="watchdog pings",
        )
    finally:
        status = stop_daemon(proc)
    assert status == 0
    lines = notify.snapshot()
    assert lines.count("READY=1") == 1 and lines.count("STOPPING=1") == 1
    assert lines.index("STOPPING=1") > ready and "WATCHDOG=1" not in lines[lines.index("STOPPING=1") :]
    log = (tmp_path / "inditoredis.log").read_text()
    assert "Traceback" not in log


def test_sighup_reloads_unchanged_changed_and_refuses_a_bad_configuration(
    simulators, redis_proc, rconn, notify, tmp_path
):
    common = inditoredis_common(simulators.port, redis_proc.port)
    config = write_config(tmp_path, "inditoredis", common, "[service]\nblob_folder =\n")
    proc = start_daemon("inditoredis", config, notify)

    def reload() -> int:
        """SIGHUP; the index of the READY=1 that ends the reload."""
        mark = len(notify.snapshot())
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: notify.has("RELOADING=1", mark), what="RELOADING=1")
        reloading = notify.index("RELOADING=1", mark)
        wait_for(lambda: notify.has("READY=1", reloading), timeout=20, what="READY=1 after RELOADING=1")
        return notify.index("READY=1", reloading)

    try:
        wait_for(lambda: notify.has("READY=1"), timeout=20, what="READY=1")
        wait_for(lambda: rconn.exists("indi_devices"), timeout=20, what="indi_devices")
        reload()  # unchanged: the bridge keeps running
        log = (tmp_path / "inditoredis.log").read_text()
        assert "configuration unchanged" in log

        config.write_text("[service]\nblob_folder =\n[redis]\nkeyprefix = dome2_\n")
        done = reload()  # changed: a new bridge writes under the new prefix
        assert any(line.startswith("STATUS=") for line in notify.snapshot()[:done])
        wait_for(lambda: rconn.exists("dome2_devices"), timeout=20, what="keys under the new prefix")

        config.write_text("[service]\nblob_folder =\n[redis]\nport = many\n")
        reload()  # bad: refused with one line, the running bridge kept
        log = (tmp_path / "inditoredis.log").read_text()
        assert "reload refused, keeping the running configuration" in log and "port = 'many'" in log
        assert proc.poll() is None
        rconn.delete("dome2_devices")
        rconn.publish("to_indi", b'<getProperties version="1.7"/>')
        wait_for(lambda: rconn.exists("dome2_devices"), timeout=20, what="the kept bridge still serving")
    finally:
        status = stop_daemon(proc)
    assert status == 0 and "Traceback" not in (tmp_path / "inditoredis.log").read_text()


def test_watchdog_pings_stop_while_the_event_loop_hangs(notify, tmp_path):
    config = write_config(tmp_path, "inditoredis", "", "[service]\n")
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "200000"}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("hung_service.py")), str(config)], env=env
    )
    try:
        wait_for(
            lambda: notify.has("HANG=end") and notify.has("WATCHDOG=1", notify.index("HANG=end")),
            timeout=20,
            what="a hang and a ping after it",
        )
    finally:
        status = stop_daemon(proc)
    lines = notify.snapshot()
    begin, end = lines.index("HANG=begin"), lines.index("HANG=end")
    assert (
        "WATCHDOG=1" in lines[:begin] and "WATCHDOG=1" not in lines[begin:end]
    )  # a hung loop sends no pings
    assert status == 0 and lines[-1] == "STOPPING=1"


def test_not_ready_while_redis_is_down_then_ready_when_it_starts(simulators, notify, tmp_path):
    redis_port = free_port()
    config = write_config(
        tmp_path,
        "inditoredis",
        f"[indi]\nhost = 127.0.0.1\nport = {simulators.port}\n[redis]\nhost = 127.0.0.1\n"
        f"port = {redis_port}\n",
        "[service]\nblob_folder =\n",
    )
    proc = start_daemon("inditoredis", config, notify)
    try:
        wait_for(
            lambda: any(
                "waiting for Redis: connection refused, retry in" in line for line in notify.snapshot()
            ),
            timeout=20,
            what="STATUS saying why it is not ready",
        )
        assert not notify.has("READY=1") and proc.poll() is None
        with RedisProcess(port=redis_port):
            wait_for(lambda: notify.has("READY=1"), timeout=20, what="READY=1 once Redis is up")
            status = stop_daemon(proc)
    finally:
        stop_daemon(proc)
    assert status == 0


def _bridge_configs(
    kind: str, tmp_path: Path, redis_port: int, broker_port: int, indi_port: int
) -> tuple[str, str]:
    common = (
        f"[indi]\nhost = 127.0.0.1\nport = {indi_port}\n[redis]\nhost = 127.0.0.1\nport = {redis_port}\n"
        f"[mqtt]\nhost = 127.0.0.1\nport = {broker_port}\n"
    )
    own = {
        "driverstoredis": f"[service]\ndrivers = {STANDIN}\nblob_folder = {tmp_path}\n",
        "inditomqtt": "[service]\nmqtt_id = obs1\n",
        "driverstomqtt": f"[service]\ndrivers = {STANDIN}\nmqtt_id = obs2\n",
        "mqtttoredis": f"[service]\nmqtt_id = gui1\nblob_folder = {tmp_path}\n[log_lengths]\nmessages = 20\n",
        "mqtttoport": f"[service]\nmqtt_id = port1\nlisten_host = 127.0.0.1\nlisten_port = {free_port()}\n",
    }[kind]
    return common, own


@pytest.mark.parametrize(
    "service", ["driverstoredis", "inditomqtt", "driverstomqtt", "mqtttoredis", "mqtttoport"]
)
def test_every_bridge_service_becomes_ready_and_stops_cleanly(
    service, simulators, redis_proc, mosquitto_proc, notify, tmp_path
):
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
    config = write_config(
        tmp_path,
        "web",
        f"[redis]\nhost = 127.0.0.1\nport = {redis_proc.port}\n",
        f"[service]\nblob_folder = {tmp_path}\nlisten_port = {free_port()}\n[users]\n",
    )
    added = subprocess.run(
        [str(BIN / "indiredis-web"), "--config", str(config), "--add-user", "alice"],
        input="correct horse battery\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert added.returncode == 0 and "correct horse" not in config.read_text(), added.stderr
    fd = listener.fileno()
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "LISTEN_FDS": "1"}
    # as systemd does: the socket is fd 3 and LISTEN_PID names the daemon (the launcher's pid, kept by exec)
    launcher = (
        "import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
        "os.execv(sys.argv[2], sys.argv[2:])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher, str(fd), str(BIN / "indiredis-web"), "--config", str(config)],
        env=env,
        pass_fds=[fd],
    )
    listener.close()
    try:
        wait_for(lambda: notify.has("READY=1"), timeout=20, what="web READY=1")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            # answered by the web app, which asks for a login first
            assert (
                response.status == 200 and response.url.endswith("/login") and b"password" in response.read()
            )
        # the usual next step: another user, then `systemctl reload`, which rebuilds the web server; it
        # serves systemd's socket again (binding listen_port instead would leave the socket unserved)
        subprocess.run(
            [str(BIN / "indiredis-web"), "--config", str(config), "--add-user", "bob"],
            input="another long password\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: notify.snapshot().count("READY=1") == 2, timeout=20, what="READY=1 after the reload")
        assert proc.poll() is None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200 and response.url.endswith("/login")
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
    ("port out of range", "[indi]\nport = 70000\n", "[indi] port = 70000 is out of range (1-65535)"),
    ("tiny message limit", "[service]\nmax_message_size = 10\n", "max_message_size = 10 is out of range"),
    (
        "TLS files without ssl",
        "[redis]\nssl_ca_certs = /etc/ssl/ca.pem\n",
        "[redis] TLS files are given but ssl is not enabled",
    ),
    (
        "client certificate without key",
        "[redis]\nssl = yes\nssl_certfile = /etc/ssl/c.pem\n",
        "needs both ssl_certfile and ssl_keyfile",
    ),
    ("empty channel", "[redis]\nto_indi_channel =\n", "[redis] to_indi_channel must be a non-empty string"),
    ("duplicate key", "[indi]\nport = 1\nport = 2\n", "option 'port' in section 'indi' already exists"),
    (
        "section the service does not use",
        "[mqtt]\nport = 1883\n",
        "[mqtt] is not used by indiredis-inditoredis",
    ),
    (
        "blob folder that cannot be made",
        "[service]\nblob_folder = /etc/hostname/blobs\n",
        "[service] blob_folder = /etc/hostname/blobs: /etc/hostname is not a folder",
    ),
]


@pytest.mark.parametrize("case, text, expected", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_configuration_gives_one_line_and_status_78(case, text, expected, tmp_path):
    config = write_config(tmp_path, "inditoredis", "", text)
    result = subprocess.run(
        [str(BIN / "indiredis-inditoredis"), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 78, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    "service, text, expected",
    [
        ("inditomqtt", "[service]\nmqtt_id = a+b\n", "[service] mqtt_id must be a non-empty name"),
        ("driverstoredis", "[service]\ndrivers =\n", "drivers must not be empty"),
        ("inditomqtt", "[service]\nmqtt_id = a/b\n", "[service] mqtt_id must be a non-empty name"),
        (
            "mqtttoport",
            "[service]\nmqtt_id = p\nlisten_port = 0\n",
            "[service] listen_port = 0 is out of range",
        ),
        (
            "inditomqtt",
            "[service]\nmqtt_id = m\n[mqtt]\nto_indi_topic = a/#\n",
            "must not contain MQTT wildcards",
        ),
        (
            "mqtttoredis",
            "[service]\nmqtt_id = m\n[mqtt]\nfrom_indi_topic = to_indi\n",
            "four MQTT topics must differ",
        ),
    ],
)
@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_missing_or_invalid_required_keys(service, text, expected, check, tmp_path):
    config = write_config(tmp_path, service, "", text)
    result = subprocess.run(
        [str(BIN / f"indiredis-{service}"), "--config", str(config)] + ["--check"] * check,
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 78 and len(lines) == 1, result.stderr
    assert str(config) in lines[0] and expected in lines[0] and "Traceback" not in result.stderr, (
        result.stderr
    )


def test_a_mistake_in_common_ini_names_common_ini(tmp_path):
    config = write_config(tmp_path, "inditoredis", "[redis]\ndb = -1\n", "[service]\n")
    result = subprocess.run(
        [str(BIN / "indiredis-inditoredis"), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 78, result.stderr
    assert f"{tmp_path / 'common.ini'}: [redis] db = -1 is out of range (0 or more)" in result.stderr


def test_in_a_terminal_each_line_has_time_level_and_message(tmp_path):
    """Not under systemd (``$JOURNAL_STREAM`` names another file): plain lines on stderr.  Under systemd
    the records go to the journal instead (test_journal.py)."""
    config = write_config(tmp_path, "inditoredis", "", "[service]\nlog_level = chatty\n")
    result = subprocess.run(
        [str(BIN / "indiredis-inditoredis"), "--config", str(config)],
        env={**os.environ, "JOURNAL_STREAM": "1:2"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 78 and result.stderr.count("\n") == 1
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR configuration error: ", result.stderr)


def test_template_unit_runs_a_second_inditoredis_from_its_own_file(tmp_path):
    unit = (Path(__file__).parents[2] / "systemd" / "indiredis-inditoredis@.service").read_text()
    assert "--config /etc/indiredis/inditoredis-%i.ini" in unit
    blobs = tmp_path / "dome2-blobs"
    config = write_config(
        tmp_path,
        "inditoredis-dome2",
        "[indi]\nport = 7625\n",
        f"[redis]\nkeyprefix = dome2_\n[service]\nblob_folder = {blobs}\n",
    )
    result = subprocess.run(
        [str(BIN / "indiredis-inditoredis"), "--config", str(config), "--check"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and "configuration is valid" in result.stdout, result.stderr
    assert not blobs.exists()  # --check builds the bridge but writes nothing (the folder comes with a BLOB)


def test_template_unit_runs_a_second_mqtttoredis_from_its_own_file(tmp_path):
    unit = (Path(__file__).parents[2] / "systemd" / "indiredis-mqtttoredis@.service").read_text()
    assert "--config /etc/indiredis/mqtttoredis-%i.ini" in unit
    config = write_config(
        tmp_path,
        "mqtttoredis-east",
        "[mqtt]\nport = 1883\n",
        f"[service]\nmqtt_id = central-east\nsubscribe_list = east-dome east-roof\n"
        f"blob_folder = {tmp_path / 'east-blobs'}\n",
    )
    result = subprocess.run(
        [str(BIN / "indiredis-mqtttoredis"), "--config", str(config), "--check"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and "configuration is valid" in result.stdout, result.stderr


def test_python_module_entry_point(tmp_path):
    text = subprocess.run(
        [sys.executable, "-m", "indiredis.service.cli", "mqtttoport", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert text.startswith("usage: indiredis-mqtttoport") and "listen_port" in text


def test_missing_configuration_file(tmp_path):
    result = subprocess.run(
        [str(BIN / "indiredis-web"), "--config", str(tmp_path / "none.ini")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 78 and "no such configuration file" in result.stderr


def test_help_explains_every_option():
    assert len(config.SCHEMAS) == 7  # the six bridges and the web client
    for service in config.SCHEMAS:
        text = subprocess.run(
            [str(BIN / f"indiredis-{service}"), "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        assert "--config" in text and "--log-level" in text and f"/etc/indiredis/{service}.ini" in text
        assert f"examples/{service}.ini" in text  # where the commented example with every key is
        schema = config.SCHEMAS[service]
        for section in ("service",) + schema.hosts:
            keys = schema.service if section == "service" else config.HOST_SECTIONS[section]
            assert f"[{section}]" in text and all(f"    {key} " in text for key in keys), (service, section)


def test_systemd_analyze_verify_passes_on_every_unit(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing (make test installs the systemd package)")
    units = sorted((Path(__file__).parents[2] / "systemd").glob("indiredis-*"))
    assert (
        len(units) == 11
    )  # six bridges, the inditoredis@ and mqtttoredis@ templates, the web service and its socket, indiserver
    for unit in units:  # the units name /usr/bin/indiredis-*: point them at this installation's scripts
        (tmp_path / unit.name).write_text(
            unit.read_text().replace("/usr/bin/indiredis-", f"{BIN}/indiredis-")
        )
    # and an instance of the template, as `systemctl start indiredis-inditoredis@dome2` makes it
    (tmp_path / "indiredis-inditoredis@dome2.service").write_text(
        (tmp_path / "indiredis-inditoredis@.service").read_text()
    )
    (tmp_path / "indiredis-mqtttoredis@east.service").write_text(
        (tmp_path / "indiredis-mqtttoredis@.service").read_text()
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_enabling_the_web_service_starts_it_at_boot_with_its_socket(tmp_path):
    """``systemctl enable indiredis-web`` (run by systemctl itself on a copy of the units) makes the web
    process start at boot, so that its history covers the night, and enables its socket (Also=), so that
    socket activation goes on; enabling the socket alone leaves the service to the first connection."""
    if not shutil.which("systemctl"):
        pytest.fail("systemctl is missing (make test installs the systemd package)")
    units = tmp_path / "usr/lib/systemd/system"
    units.mkdir(parents=True)
    for unit in (Path(__file__).parents[2] / "systemd").glob("indiredis-web.*"):
        shutil.copy(unit, units / unit.name)
    wants = tmp_path / "etc/systemd/system"

    def systemctl(*args: str) -> None:
        subprocess.run(
            ["systemctl", f"--root={tmp_path}", *args], check=True, capture_output=True, timeout=60
        )

    systemctl("enable", "indiredis-web.socket")
    assert (wants / "sockets.target.wants/indiredis-web.socket").is_symlink()
    assert not (wants / "multi-user.target.wants/indiredis-web.service").is_symlink()
    systemctl("disable", "indiredis-web.socket")
    systemctl("enable", "indiredis-web.service")
    assert (wants / "multi-user.target.wants/indiredis-web.service").is_symlink()
    assert (wants / "sockets.target.wants/indiredis-web.socket").is_symlink()
    systemctl("disable", "indiredis-web.service")
    assert not [path for path in wants.rglob("*") if path.is_symlink()]
