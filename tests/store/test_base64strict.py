"""The fast base64 decoder (pybase64) and the fallback (binascii) decode BLOB text alike: the same
bytes for every valid text, a BlobError for every broken one, whatever the line breaks, blanks and
the points where the text is cut into pieces."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indiredis.store import base64strict
from indiredis.store.blobs import Base64Stream, BlobError, BlobFolder

# the comparisons need both decoders; the whole-payload tests run with what is installed
needs_both = pytest.mark.skipif("pybase64" not in base64strict.DECODERS, reason="pybase64 is not installed")

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
EXAMPLES = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# mostly base64 characters, some padding and blanks, now and then a character outside the alphabet
CHARACTERS = st.sampled_from(ALPHABET * 3 + "====\n\n\r \t" + "-_*.!\xe9\x00")


def outcome(decode: base64strict.Decoder, text: bytes) -> bytes | str:
    try:
        return decode(text)
    except ValueError as exc:
        assert isinstance(exc, binascii.Error)
        return "refused"


@needs_both
@EXAMPLES
@given(st.lists(st.text(CHARACTERS, min_size=4, max_size=4), max_size=10).map("".join))
def test_the_decoders_agree_on_any_groups_of_four(groups):
    # what Base64Stream hands them (binascii alone takes b"0000=", an extra "=" after a whole group;
    # Base64Stream never hands it such a text: it keeps the "=" back, then refuses it as left over)
    text = groups.encode("latin-1")
    assert outcome(base64strict.DECODERS["pybase64"], text) == outcome(base64strict.decode_binascii, text)


@needs_both
@EXAMPLES
@given(st.binary(max_size=200))
def test_the_decoders_agree_on_valid_text(data):
    text = base64.b64encode(data)
    assert base64strict.DECODERS["pybase64"](text) == base64strict.decode_binascii(text) == data


def streamed(name: str, text: bytes, cuts: list[int]) -> bytes | str:
    """What Base64Stream with decoder ``name`` makes of ``text`` handed over in pieces cut at ``cuts``."""
    stream = Base64Stream()
    decode, base64strict.decode = base64strict.decode, base64strict.DECODERS[name]
    try:
        out = []
        at = 0
        for cut in [*sorted(cuts), len(text)]:
            out += stream.decode(text[at:cut])
            at = max(at, cut)
        stream.finish()
        return b"".join(out)
    except BlobError as exc:
        assert str(exc).startswith("broken base64 (")
        return "refused"
    finally:
        base64strict.decode = decode


@st.composite
def blob_text(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """Base64 text as BLOBs carry it (wrapped, blanks around), often damaged, and where to cut it."""
    data = draw(st.binary(max_size=300))
    encoded = base64.b64encode(data).decode()
    width = draw(st.sampled_from([72, 76, 4, 7, 10_000]))
    text = "\n".join(encoded[i : i + width] for i in range(0, len(encoded), width))
    text = (
        draw(st.sampled_from(["", "\n", "  \n", "\r\n"])) + text + draw(st.sampled_from(["", "\n", " \t\n"]))
    )
    for _ in range(draw(st.integers(0, 3))):  # damage: a character inserted, replaced or removed
        at = draw(st.integers(0, len(text)))
        what = draw(st.sampled_from(["insert", "replace", "remove"]))
        char = draw(CHARACTERS)
        if what == "insert":
            text = text[:at] + char + text[at:]
        elif what == "replace":
            text = text[:at] + char + text[at + 1 :]
        else:
            text = text[:at] + text[at + 1 :]
    raw = text.encode("latin-1")
    cuts = draw(st.lists(st.integers(0, len(raw)), max_size=6))
    return raw, cuts


@needs_both
@EXAMPLES
@given(blob_text())
def test_the_stream_decodes_alike_with_either_decoder(case):
    text, cuts = case
    assert streamed("pybase64", text, cuts) == streamed("binascii", text, cuts)


@needs_both
@EXAMPLES
@given(st.binary(max_size=300), st.lists(st.integers(0, 500), max_size=6))
def test_valid_wrapped_text_decodes_to_its_data_with_either_decoder(data, cuts):
    encoded = base64.b64encode(data)
    text = b"\n".join(encoded[i : i + 72] for i in range(0, len(encoded), 72)) + b"\n"
    assert streamed("pybase64", text, cuts) == streamed("binascii", text, cuts) == data


@needs_both
def test_the_decoder_in_use_is_the_fast_one_when_installed():
    assert base64strict.NAME == "pybase64" and base64strict.decode is base64strict.DECODERS["pybase64"]


# ------------------------------------------------------- a BLOB that arrives whole (an MQTT payload)
STAMP = "2026-01-01T00:00:00"


@pytest.mark.parametrize("decoder", ["pybase64", "binascii"], indirect=True)
def test_a_whole_payload_decodes_with_either_decoder(tmp_path, decoder):
    data = os.urandom(3 * 1024 * 1024 + 7)  # more than one WRITE_CHUNK of text, cut mid-line
    encoded = base64.b64encode(data).decode()
    text = "\n".join(encoded[i : i + 72] for i in range(0, len(encoded), 72)) + "\n"
    path, size = BlobFolder(tmp_path).write("Cam", "CCD1", "IMG", STAMP, ".fits", text, str(len(data)))
    assert size == len(data) and Path(path).read_bytes() == data


@pytest.mark.parametrize("text", ["QUJD*EFC", "QQ==QUJD", "QUJDR", "QU=D", "QUJD\u00e9"])
def test_a_broken_whole_payload_is_refused_with_either_decoder(tmp_path, decoder, text):
    with pytest.raises(BlobError, match="broken base64"):
        BlobFolder(tmp_path).write("Cam", "CCD1", "IMG", STAMP, ".fits", text)
    assert list(tmp_path.iterdir()) == []
