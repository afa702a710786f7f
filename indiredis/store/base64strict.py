"""Strict base64 decoding of BLOB text, in this one place.

:func:`decode` is pybase64's SIMD decoder when the ``pybase64`` package is installed (the ``fast``
extra: ``pip install indiredis[fast]``; Debian 12 does not package it), else CPython's
``binascii.a2b_base64``, about ten times slower, which then takes most of a bridge's CPU while a
large BLOB streams in.  Both are strict: they take groups of four characters of the standard
alphabet, ``=`` only as the padding of the last group, and refuse anything else (line breaks and
blanks included, which :class:`~indiredis.store.blobs.Base64Stream` removes first) with
``binascii.Error``; ``tests/store/test_base64strict.py`` checks that they agree on every input.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable

Decoder = Callable[[bytes | memoryview], bytes]


def decode_binascii(groups: bytes | memoryview) -> bytes:
    """The bytes of ``groups`` (complete groups of four characters), decoded by CPython's binascii;
    raises ``binascii.Error`` for anything but strict base64."""
    return binascii.a2b_base64(groups, strict_mode=True)


try:
    import pybase64
except ImportError:  # pragma: no cover - depends on what is installed
    decode: Decoder = decode_binascii
    DECODERS: dict[str, Decoder] = {"binascii": decode_binascii}
else:

    def decode_pybase64(groups: bytes | memoryview) -> bytes:
        """As :func:`decode_binascii`, decoded by pybase64 (SIMD where the CPU has it)."""
        return pybase64.b64decode(groups, validate=True)

    decode = decode_pybase64
    DECODERS = {"pybase64": decode_pybase64, "binascii": decode_binascii}

NAME = next(name for name, decoder in DECODERS.items() if decoder is decode)
"""The decoder in use: ``pybase64`` or ``binascii``."""
