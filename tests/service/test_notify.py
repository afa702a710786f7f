"""The sd_notify sender (``systemd.daemon.notify``), on path and abstract sockets."""

from __future__ import annotations

import os
import socket

import pytest

from indiredis.service.notify import Notifier, watchdog_interval

STATUS = "connected to indiserver 127.0.0.1:7624 ⇄ Redis; 2 devices on Kuppel Süd"


def _receive_with(address: str, bind_to: str, monkeypatch) -> list[bytes]:
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(bind_to)
    receiver.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    try:
        notifier = Notifier()
        notifier.status(STATUS)
        notifier.ready()
        notifier.reloading()
        return [receiver.recv(4096) for _ in range(3)]
    finally:
        receiver.close()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_status_ready_reloading_arrive_as_utf8(abstract, tmp_path, monkeypatch):
    if abstract:  # systemd may name an abstract socket: "@name" means "\0name"
        name = f"indiredis-test-{os.getpid()}"
        datagrams = _receive_with("@" + name, "\0" + name, monkeypatch)
    else:
        datagrams = _receive_with(str(tmp_path / "notify"), str(tmp_path / "notify"), monkeypatch)
    assert datagrams[0] == ("STATUS=" + STATUS).encode("utf-8")  # systemd ignores a STATUS= that is not UTF-8
    assert datagrams[1] == b"READY=1"
    lines = datagrams[2].decode().split("\n")
    assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")


def test_without_notify_socket_nothing_is_sent(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    notifier.ready()  # a no-op, no error


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval() is None
