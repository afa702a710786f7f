"""The head of a message read from its opening tag alone (:mod:`indiredis.protocol.head`)."""

from __future__ import annotations

from indiredis.protocol.head import MessageHead, message_head


def test_the_head_names_tag_device_and_property() -> None:
    head = message_head(b'<setNumberVector device="Mount &amp; Co" name=\'EQ\' state="Ok"><oneNumber')
    assert head == MessageHead("setNumberVector", "Mount & Co", "EQ")
    assert not head.changes_layout


def test_definitions_and_deletions_change_the_layout() -> None:
    assert message_head(b'<defTextVector device="D" name="P">').changes_layout
    assert message_head(b'<delProperty device="D"/>').changes_layout
    assert not message_head(b'<message device="D" message="hello"/>').changes_layout


def test_only_the_opening_tag_is_read() -> None:
    blob = b'<setBLOBVector device="CCD" name="CCD1"><oneBLOB name="IMG">' + b"A" * 10_000_000
    assert message_head(blob) == MessageHead("setBLOBVector", "CCD", "CCD1")
    assert message_head(b"not xml") == MessageHead("", "", "")
