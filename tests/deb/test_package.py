"""The Debian package: build it, lintian it, install it, use it, remove and purge it.

Runs as root (CI does); the package is installed on the machine for the
length of the test and purged at the end.  The installed daemon runs on
Debian's own python3-redis / python3-paho-mqtt / python3-systemd, not the
test virtualenv's (which does not see /usr/lib/python3/dist-packages), against
a real Redis and indiserver.

"Purge leaves nothing behind" is checked by comparing every path under /etc,
/usr, /var/lib, /opt and /srv before installation and after purge; the
package's dependencies are installed before the first listing, so that only
what the package itself did shows up.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.sentinel import SERVICE, sentinel_topology
from tests.support.servers import RedisProcess, wait_for

ROOT = Path(__file__).parents[2]
SERVICES = [
    "inditoredis",
    "driverstoredis",
    "inditomqtt",
    "driverstomqtt",
    "mqtttoredis",
    "mqtttoport",
    "web",
]
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

# what a purge may leave: the system user is kept on purpose (Debian practice, see debian/README.Debian),
# and adding it made the shadow tools write their usual backups of the files they changed
KEPT_ON_PURPOSE = {"/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-"}
SNAPSHOT_TOPS = ["/etc", "/usr", "/var/lib", "/opt", "/srv"]
NOT_SNAPSHOTTED = ("/var/lib/dpkg", "/var/lib/apt")  # dpkg's and apt's own records
PACKAGE_FOLDERS = ("/etc/indiredis", "/var/lib/indiredis")  # what the package makes and purge removes

# the booted-container check downloads a Debian system the first time (about a minute on a good mirror);
# beyond this budget it is abandoned and skipped, so that a slow mirror cannot stall the suite
NSPAWN_BUDGET = 240

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="installing a package needs root (CI runs as root)"),
    pytest.mark.skipif(shutil.which("apt-get") is None, reason="no apt-get: not a Debian system"),
    # on a fresh machine the first test also installs the build dependencies and builds the package
    pytest.mark.timeout(300),
]


def run(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; raise with that output when ``check`` and it fails."""
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=600, env=env)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def snapshot() -> set[str]:
    """Every path (files, folders, links) under SNAPSHOT_TOPS, dpkg's and apt's own records left out."""
    paths: set[str] = set()
    for top in SNAPSHOT_TOPS:
        for folder, folders, files in os.walk(top):
            if folder.startswith(NOT_SNAPSHOTTED):
                folders[:] = []
                continue
            paths.update(os.path.join(folder, name) for name in folders + files)
    return paths


def dependencies(deb: Path) -> list[str]:
    """The package names of the .deb's Depends (first of each alternative, no versions or :any)."""
    field = run("dpkg-deb", "-f", str(deb), "Depends").stdout
    return [re.split(r"[\s(:]", alternatives.split("|")[0].strip())[0] for alternatives in field.split(",")]


@pytest.fixture(scope="module")
def deb() -> Path:
    """The package, built by `make deb` from a clean copy of the tree (lintian --fail-on error included)."""
    if run("dpkg", "-s", "indiredis", check=False).returncode == 0:
        run("dpkg", "-P", "indiredis")
    run("make", "-C", str(ROOT), "deb")
    debs = sorted((ROOT / "dist").glob("indiredis_*.deb"))
    assert debs, "make deb built no package"
    return debs[-1]


@pytest.fixture(scope="module")
def installed(deb):
    """The package installed with apt-get; yields the file listing taken just before installing it."""
    run("apt-get", "install", "-y", "-q", "--no-install-recommends", *dependencies(deb), env=APT_ENV)
    # the package is not installed (the deb fixture purged it): its folders are leftovers of an
    # interrupted earlier run, or of a daemon run by hand with the default configuration
    for leftover in PACKAGE_FOLDERS:
        shutil.rmtree(leftover, ignore_errors=True)
    before = snapshot()
    run("apt-get", "install", "-y", "-q", "--no-install-recommends", str(deb), env=APT_ENV)
    try:
        yield before
    finally:
        run("dpkg", "-P", "indiredis", check=False)


def test_lintian_reports_no_errors(deb):
    result = run("lintian", "--fail-on", "error", str(deb), check=False)
    assert result.returncode == 0, result.stdout
    assert not [line for line in result.stdout.splitlines() if line.startswith("E:")]


def test_entry_points_help_units_conffiles_user(installed):
    for service in SERVICES:
        text = run(f"/usr/bin/indiredis-{service}", "--help").stdout
        assert "--config" in text and f"/etc/indiredis/{service}.ini" in text
        assert Path(f"/usr/share/man/man1/indiredis-{service}.1.gz").is_file()
    text = run("/usr/bin/indiredis-indiserver", "--help").stdout  # the indiserver unit's helper
    assert "/etc/indiredis/indiserver.ini" in text and "fifo" in text
    assert Path("/usr/share/man/man1/indiredis-indiserver.1.gz").is_file()
    units = sorted(Path("/lib/systemd/system").glob("indiredis-*"))
    # six bridges, the inditoredis@ and mqtttoredis@ templates, web service and socket, indiserver
    assert len(units) == 11
    verify = run("systemd-analyze", "verify", "--man=no", *map(str, units), check=False)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    for unit in units:  # the Documentation= of every unit points at a file the package installed
        for url in re.findall(r"file://(\S+)", unit.read_text()):
            assert Path(url).is_file(), f"{unit.name}: Documentation={url} is missing"
    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "indiredis").stdout
    for name in ["common", "indiserver"] + SERVICES:
        path = Path(f"/etc/indiredis/{name}.ini")
        assert str(path) in conffiles and path.exists()
        status = path.stat()
        assert oct(status.st_mode & 0o777) == "0o640" and status.st_uid == 0
        assert status.st_gid == int(run("getent", "group", "indiredis").stdout.split(":")[2])
    user = run("getent", "passwd", "indiredis").stdout
    assert ":/var/lib/indiredis:" in user
    assert Path("/var/lib/indiredis/blobs").is_dir()
    assert Path("/var/lib/indiredis").stat().st_uid == int(user.split(":")[2])
    # the web client's first step (debian/README.Debian): the users' file gets web.ini's 0640 root:indiredis
    web_ini = Path("/etc/indiredis/web.ini")
    shipped = web_ini.read_text()
    subprocess.run(
        ["/usr/bin/indiredis-web", "--add-user", "admin"],
        input="a long password\n",
        text=True,
        check=True,
        capture_output=True,
    )
    users = Path("/etc/indiredis/web-users.ini")
    assert "admin = operator:" in users.read_text() and web_ini.read_text() == shipped
    assert str(users) not in conffiles  # an upgrade's new web.ini leaves the users alone
    before, after = web_ini.stat(), users.stat()
    assert (after.st_mode, after.st_uid, after.st_gid) == (before.st_mode, before.st_uid, before.st_gid)
    assert run("/usr/bin/indiredis-web", "--check", check=False).returncode == 0  # the user counts
    for unit in units:  # nothing enabled or started on installation
        enabled = run("systemctl", "is-enabled", unit.name, check=False).stdout.strip()
        assert enabled in ("disabled", "indirect", "static", ""), f"{unit.name}: {enabled}"


def test_installed_html_documentation(installed):
    """docs/ and the API reference are installed as HTML, their JavaScript linked to libjs-sphinxdoc."""
    html = Path("/usr/share/doc/indiredis/html")
    pages = ["index", "architecture", "redis-keys", "mqtt", "tools", "configuration", "api/index", "api/core"]
    for page in pages:
        assert (html / f"{page}.html").is_file(), f"{page}.html is missing"
    assert (html / "_static" / "searchtools.js").resolve().is_file()


@contextlib.contextmanager
def installed_daemon(service: str, folder: Path, common: str, own: str) -> Iterator[Path]:
    """Run /usr/bin/indiredis-<service> (Debian's python3 and libraries, not the test virtualenv's) with
    ``common.ini`` and ``<service>.ini`` in ``folder``; yields its log file until it is ready, and checks
    that SIGTERM stops it with status 0."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "common.ini").write_text(common)
    (folder / f"{service}.ini").write_text(own)
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"
    log = folder / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [f"/usr/bin/indiredis-{service}", "--config", str(folder / f"{service}.ini")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: f"{service} ready" in log.read_text(), timeout=30, what=f"the installed {service} ready"
        )
        yield log
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()


def test_installed_daemon_runs_on_debian_libraries(installed, simulators, redis_proc, tmp_path):
    common = (
        f"[indi]\nhost = 127.0.0.1\nport = {simulators.port}\n"
        f"[redis]\nhost = 127.0.0.1\nport = {redis_proc.port}\n"
    )
    with installed_daemon(
        "inditoredis", tmp_path, common, f"[service]\nblob_folder = {tmp_path / 'blobs'}\n"
    ):
        first_line = Path("/usr/bin/indiredis-inditoredis").read_text().splitlines()[0]
        assert first_line.startswith("#!/usr/bin/python3")


def test_installed_daemon_on_a_unix_socket_and_through_sentinel(installed, simulators, tmp_path):
    """The installed inditoredis on Debian's python3-redis (4.3 in bookworm, where the test virtualenv has
    8.x): over a Unix socket, then through Sentinel, following a failover (SIGKILL of the master)."""
    devices = {b"Telescope Simulator", b"CCD Simulator"}
    indi = f"[indi]\nhost = 127.0.0.1\nport = {simulators.port}\n"
    socket_path = tmp_path / "redis.sock"
    with RedisProcess(extra=["--unixsocket", str(socket_path)]):
        common = f"{indi}[redis]\nsocket = {socket_path}\n"
        own = f"[service]\nblob_folder = {tmp_path / 'blobs'}\n"
        with installed_daemon("inditoredis", tmp_path / "unix", common, own):
            rconn = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=5)
            wait_for(lambda: devices <= rconn.smembers("indi_devices"), timeout=30, what="the simulators")
            rconn.close()
    with sentinel_topology() as topology:
        sentinels = ", ".join(f"127.0.0.1:{s.port}" for s in topology.sentinels)
        common = f"{indi}[redis]\nsentinels = {sentinels}\nservice_name = {SERVICE}\n"
        own = f"[service]\nblob_folder = {tmp_path / 'blobs'}\n"
        with installed_daemon("inditoredis", tmp_path / "sentinel", common, own) as log:
            new = redis.Redis(host="127.0.0.1", port=topology.replica.port, socket_timeout=5)
            wait_for(lambda: devices <= new.smembers("indi_devices"), timeout=30, what="the replica in sync")
            topology.master.kill(signal.SIGKILL)
            change = f"changed from 127.0.0.1:{topology.master.port} to 127.0.0.1:{topology.replica.port}"
            wait_for(lambda: change in log.read_text(), timeout=30, what="the installed bridge to follow")
            wait_for(lambda: new.exists("indi_heartbeat"), timeout=30, what="the bridge writing there")
            new.close()


def test_installed_mqtt_chain_runs_on_debian_paho(
    installed, simulators, redis_proc, mosquitto_proc, tmp_path
):
    """inditomqtt -> mosquitto -> mqtttoredis as installed, on Debian's python3-paho-mqtt (1.6 in bookworm,
    where the test virtualenv has 2.x): the simulators reach Redis."""
    common = (
        f"[indi]\nhost = 127.0.0.1\nport = {simulators.port}\n"
        f"[redis]\nhost = 127.0.0.1\nport = {redis_proc.port}\n"
        f"[mqtt]\nhost = 127.0.0.1\nport = {mosquitto_proc.port}\n"
    )
    with (
        installed_daemon("inditomqtt", tmp_path / "instruments", common, "[service]\nmqtt_id = obs1\n"),
        installed_daemon(
            "mqtttoredis",
            tmp_path / "gui",
            common,
            f"[service]\nmqtt_id = gui1\nblob_folder = {tmp_path / 'blobs'}\n",
        ),
    ):
        rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port)
        wait_for(
            lambda: {b"Telescope Simulator", b"CCD Simulator"} <= rconn.smembers("indi_devices"),
            timeout=30,
            what="both simulators in Redis through the installed MQTT chain",
        )


def test_remove_keeps_conffiles_and_purge_leaves_nothing(installed):
    files = [
        path for path in run("dpkg-query", "-L", "indiredis").stdout.split() if not path.startswith("/etc/")
    ]
    run("dpkg", "-r", "indiredis")
    leftovers = [path for path in files if Path(path).is_file()]
    assert not leftovers, leftovers
    assert Path("/etc/indiredis/inditoredis.ini").exists()  # conffiles stay until purge
    assert Path("/var/lib/indiredis/blobs").is_dir()  # and so does the data
    run("dpkg", "-P", "indiredis")
    after = snapshot()
    assert not after - installed - KEPT_ON_PURPOSE, sorted(after - installed - KEPT_ON_PURPOSE)
    assert not installed - after, sorted(installed - after)  # and nothing of anyone else's went
    assert run("getent", "passwd", "indiredis").returncode == 0  # the user is kept, as documented


@pytest.mark.timeout(NSPAWN_BUDGET + 60)
def test_booted_systemd_in_an_nspawn_container_runs_the_service(deb):
    """The maintainer scripts under a booted systemd (a debootstrapped Debian in systemd-nspawn): nothing
    starts on installation, `systemctl enable --now indiredis-inditoredis` runs it and an instance of its
    template, a Redis restart is in the journal by its MESSAGE_IDs, an upgrade restarts both; with
    indiredis-indiserver enabled too, the simulators reach Redis after a boot, and again with
    `[redis] socket = /run/redis/redis-server.sock` in common.ini; removal stops them all."""
    root = os.environ.get("INDIREDIS_NSPAWN_ROOT", "/var/tmp/indiredis-nspawn")
    proc = subprocess.Popen(
        ["sh", str(ROOT / "tests/deb/nspawn_check.sh"), root, str(deb)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=NSPAWN_BUDGET)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # the script, debootstrap or apt, and systemd-nspawn
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        if "container booted" not in output:
            pytest.skip(
                f"preparing the container took over {NSPAWN_BUDGET} s (slow mirror?): "
                f"{output.strip().splitlines()[-1:]}"
            )
        pytest.fail(f"the booted container did not finish the check in {NSPAWN_BUDGET} s:\n{output[-3000:]}")
    if proc.returncode != 0 and "container booted" not in output:
        pytest.skip(f"no booted systemd container here: {output.strip().splitlines()[-1:]}")
    assert proc.returncode == 0 and "nspawn check passed" in output, output[-3000:]
    assert "\nactive\n" in output and "inditoredis ready" in output
    assert "template instance active" in output
    assert "journal: link lost and restored" in output
    assert "restarted by the upgrade" in output and "stopped by removal" in output
    assert "indiserver unit: simulators in Redis after boot" in output  # indiredis-indiserver + inditoredis
    assert "unix socket: simulators in Redis through /run/redis/redis-server.sock" in output  # [redis] socket
