"""Fixtures of the service tests: a stand-in systemd notification socket, a private journal."""

from __future__ import annotations

import os

import pytest

from tests.support.journald import PrivateJournal, missing_tools
from tests.support.notifysocket import NotifySocket


@pytest.fixture
def notify(tmp_path):
    sock = NotifySocket(tmp_path)
    yield sock
    sock.close()


@pytest.fixture
def journal(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a private journal needs root (a mount namespace of its own); CI runs as root")
    if missing_tools():
        pytest.fail(f"missing {missing_tools()} (make test installs systemd and util-linux)")
    with PrivateJournal(tmp_path) as journal:
        yield journal
