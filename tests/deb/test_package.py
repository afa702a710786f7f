"""The Debian package: build it, lintian it, install it, use it, remove and purge it.

Runs as root (CI does); the package is installed on the machine for the
length of the test and purged at the end.  The installed daemon runs on
Debian's own python3-redis / python3-paho-mqtt / python3-sdnotify, not the
test virtualenv's, against a real Redis and indiserver.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from servers import wait_for

ROOT = Path(__file__).parents[2]
SERVICES = ["inditoredis", "driverstoredis", "inditomqtt", "driverstomqtt", "mqtttoredis", "mqtttoport", "web"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installing a package needs root (CI runs as root)")


def run(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=600, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def package_files() -> list[str]:
    listing = run("dpkg-query", "-L", "indiredis").stdout.split()
    return [path for path in listing if Path(path).is_file() or not Path(path).exists()]


@pytest.fixture(scope="module")
def installed():
    if run("dpkg", "-s", "indiredis", check=False).returncode == 0:
        run("dpkg", "-P", "indiredis")
    run("make", "-C", str(ROOT), "deb")  # builds from a clean copy of the tree, and runs lintian --fail-on error
    debs = sorted((ROOT / "dist").glob("indiredis_*.deb"))
    assert debs, "make deb built no package"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "install", "-y", "-q", "--no-install-recommends", str(debs[-1]), env=env)
    try:
        yield debs[-1]
    finally:
        run("dpkg", "-P", "indiredis", check=False)


def test_lintian_reports_no_errors(installed):
    result = run("lintian", "--fail-on", "error", str(installed), check=False)
    assert result.returncode == 0, result.stdout
    assert not [line for line in result.stdout.splitlines() if line.startswith("E:")]


def test_entry_points_help_units_conffiles_user(installed, tmp_path):
    for service in SERVICES:
        text = run(f"/usr/bin/indiredis-{service}", "--help").stdout
        assert "--config" in text and f"/etc/indiredis/{service}.ini" in text
    units = sorted(Path("/lib/systemd/system").glob("indiredis-*"))
    assert len(units) == 9  # six bridges, the inditoredis@ template, web service and socket
    verify = run("systemd-analyze", "verify", "--man=no", *map(str, units), check=False)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "indiredis").stdout
    for name in ["common"] + SERVICES:
        path = Path(f"/etc/indiredis/{name}.ini")
        assert str(path) in conffiles and path.exists()
        status = path.stat()
        assert oct(status.st_mode & 0o777) == "0o640" and status.st_uid == 0
    user = run("getent", "passwd", "indiredis").stdout
    assert ":/var/lib/indiredis:" in user
    assert Path("/var/lib/indiredis/blobs").is_dir()
    enabled = run("systemctl", "is-enabled", "indiredis-inditoredis.service", check=False).stdout.strip()
    assert enabled in ("disabled", ""), enabled  # nothing enabled on installation


def test_installed_daemon_runs_on_debian_libraries(installed, simulators, redis_proc, tmp_path):
    (tmp_path / "common.ini").write_text(f"[indi]\nhost = 127.0.0.1\nport = {simulators.port}\n"
                                         f"[redis]\nhost = 127.0.0.1\nport = {redis_proc.port}\n")
    (tmp_path / "inditoredis.ini").write_text(f"[service]\nblob_folder = {tmp_path / 'blobs'}\n")
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["/usr/bin/indiredis-inditoredis", "--config", str(tmp_path / "inditoredis.ini")],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "inditoredis ready" in log.read_text(), timeout=30, what="the installed daemon ready")
        first_line = Path("/usr/bin/indiredis-inditoredis").read_text().splitlines()[0]
        assert first_line.startswith("#!/usr/bin/python3")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()


def test_booted_systemd_in_an_nspawn_container_runs_the_service(installed, tmp_path_factory):
    """`systemctl enable --now indiredis-inditoredis` in a debootstrapped Debian booted by systemd-nspawn."""
    root = Path(os.environ.get("INDIREDIS_NSPAWN_ROOT", "/var/tmp/indiredis-nspawn"))
    result = subprocess.run(["sh", str(ROOT / "tests/deb/nspawn_check.sh"), str(root)], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    if result.returncode != 0 and "container booted" not in output:
        pytest.skip(f"no booted systemd container here: {output.strip().splitlines()[-1:]} ")
    assert result.returncode == 0 and "nspawn check passed" in output, output[-3000:]
    assert "active" in output and "inditoredis ready" in output


def test_remove_keeps_conffiles_and_purge_leaves_nothing(installed):
    files = [path for path in package_files() if not path.startswith("/etc/")]
    run("dpkg", "-r", "indiredis")
    leftovers = [path for path in files if Path(path).is_file()]
    assert not leftovers, leftovers
    assert Path("/etc/indiredis/inditoredis.ini").exists()  # conffiles stay until purge
    run("dpkg", "-P", "indiredis")
    assert not Path("/etc/indiredis").exists()
    assert not Path("/var/lib/indiredis").exists()
    assert not list(Path("/lib/systemd/system").glob("indiredis-*"))
    assert not Path("/usr/lib/python3/dist-packages/indiredis").exists()
