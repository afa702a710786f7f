"""Fixtures of the store's tests."""

from __future__ import annotations

import pytest

from indiredis.store import base64strict


@pytest.fixture(params=["pybase64", "binascii"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once with each base64 decoder the store can use (pybase64's when installed, and
    the binascii fallback), made the one :func:`base64strict.decode` for the test."""
    name: str = request.param
    if name not in base64strict.DECODERS:
        pytest.skip(f"{name} is not installed")
    monkeypatch.setattr(base64strict, "decode", base64strict.DECODERS[name])
    return name
