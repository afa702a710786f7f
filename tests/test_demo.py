"""``make run``'s demonstration (indiredis.demo) with real redis-server and indiserver."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.support.servers import free_port, port_open, wait_for


def run_demo(redis_port: int, indi_port: int, tmp_path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "indiredis.demo",
            "--redis-port",
            str(redis_port),
            "--indi-port",
            str(indi_port),
            "--blobs",
            str(tmp_path / "blobs"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_an_indiserver_that_cannot_start_is_reported_with_its_own_words(redis_proc, tmp_path):
    indi_port = free_port()
    # another indiserver already holds the local socket the demo's would take
    holder_port = free_port()
    holder = subprocess.Popen(
        [
            "indiserver",
            "-p",
            str(holder_port),
            "-u",
            f"/tmp/indiserver-demo-{indi_port}",
            "indi_simulator_telescope",
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    demo = None
    try:
        wait_for(lambda: port_open(holder_port), what="the other indiserver")
        demo = run_demo(redis_proc.port, indi_port, tmp_path)
        output, _ = demo.communicate(timeout=60)
    finally:
        if demo is not None and demo.poll() is None:  # it did not give up: stop it and what it started
            demo.send_signal(signal.SIGTERM)
            demo.communicate(timeout=30)
        holder.send_signal(signal.SIGTERM)
        holder.wait(timeout=10)
    assert demo.returncode != 0
    assert f"indiserver did not start on port {indi_port}: exited with status" in output
    assert "Address already in use" in output  # indiserver's own reason, no longer hidden


def test_another_indiserver_on_another_port_does_not_stop_the_demo(redis_proc, tmp_path):
    indi_port = free_port()
    # an indiserver with the default local socket (/tmp/indiserver), as a user's own one would have
    default_port = free_port()
    default = subprocess.Popen(
        ["indiserver", "-p", str(default_port), "indi_simulator_telescope"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    demo = None
    try:
        wait_for(lambda: port_open(default_port) or default.poll() is not None, what="the other indiserver")
        # (if it exited, something else on this machine holds /tmp/indiserver: the same situation)
        demo = run_demo(redis_proc.port, indi_port, tmp_path)
        wait_for(lambda: port_open(indi_port) or demo.poll() is not None, timeout=30, what="the demo")
        assert demo.poll() is None, demo.communicate()[0]
    finally:
        if demo is not None:
            demo.send_signal(signal.SIGTERM)
            demo.communicate(timeout=30)
        default.send_signal(signal.SIGTERM)
        default.wait(timeout=10)
    assert not port_open(indi_port)  # the demo stopped the indiserver it started
