"""INDI's vocabulary: the enums equal their XML strings, and carry INDI's defaults and rules."""

from __future__ import annotations

import pytest

from indiredis.protocol.messages import FROM_DEVICE_TAGS, MEMBER_TAGS, TOP_LEVEL_TAGS
from indiredis.protocol.vocabulary import (
    VECTOR_TAGS,
    Action,
    BlobInstruction,
    Permission,
    PropertyState,
    SwitchRule,
    Tag,
    VectorKind,
    definition_defaults,
)


def test_members_compare_equal_to_their_xml_strings() -> None:
    assert Tag.GET_PROPERTIES == "getProperties"
    assert VectorKind.BLOB == "BLOB"
    assert Action.DEF == "def"
    assert PropertyState.ALERT == "Alert"
    assert Permission.RW == "rw"
    assert SwitchRule.AT_MOST_ONE == "AtMostOne"
    assert f"{BlobInstruction.ALSO}" == "Also"
    assert "defTextVector" in {Tag.DEF_TEXT_VECTOR}


def test_tags_are_the_top_level_tags_of_indi() -> None:
    assert {str(tag) for tag in Tag} == TOP_LEVEL_TAGS
    assert len(TOP_LEVEL_TAGS) == 20  # 5 def, 5 set, 4 new (no newLightVector), 6 others


@pytest.mark.parametrize(
    ("tag", "kind", "action", "member"),
    [
        ("defNumberVector", VectorKind.NUMBER, Action.DEF, "defNumber"),
        ("setBLOBVector", VectorKind.BLOB, Action.SET, "oneBLOB"),
        ("newSwitchVector", VectorKind.SWITCH, Action.NEW, "oneSwitch"),
        ("setLightVector", VectorKind.LIGHT, Action.SET, "oneLight"),
    ],
)
def test_vector_tags_know_their_kind_action_and_member_tag(
    tag: str, kind: VectorKind, action: Action, member: str
) -> None:
    assert Tag(tag).kind is kind and Tag(tag).action is action
    assert Tag(tag).member_tag == member == MEMBER_TAGS[tag]
    assert kind.tag(action) == tag


def test_plain_tags_have_no_kind_action_or_members() -> None:
    for tag in (Tag.MESSAGE, Tag.DEL_PROPERTY, Tag.GET_PROPERTIES, Tag.ENABLE_BLOB, Tag.PING_REPLY):
        assert tag.kind is None and tag.action is None and tag.member_tag is None


def test_lights_cannot_be_set_by_clients() -> None:
    assert not VectorKind.LIGHT.writable
    assert "newLightVector" not in VECTOR_TAGS
    with pytest.raises(ValueError):
        Tag("newLightVector")


def test_from_device_tags_are_definitions_values_messages_and_deletions() -> None:
    assert {t for t in FROM_DEVICE_TAGS if not t.startswith(("def", "set"))} == {"message", "delProperty"}
    assert len(FROM_DEVICE_TAGS) == 12
    assert Tag.SET_BLOB_VECTOR.from_device and not Tag.NEW_BLOB_VECTOR.from_device
    assert not Tag.GET_PROPERTIES.from_device


def test_vector_names() -> None:
    assert VectorKind.NUMBER.vector == "NumberVector"
    assert VectorKind.of_vector("SwitchVector") is VectorKind.SWITCH
    assert VectorKind.of_vector("Nonsense") is None


def test_definition_defaults_per_kind() -> None:
    assert definition_defaults(VectorKind.SWITCH) == {
        "state": "Idle",
        "perm": "ro",
        "timeout": "0",
        "rule": "AnyOfMany",
    }
    assert definition_defaults(VectorKind.NUMBER) == {"state": "Idle", "perm": "ro", "timeout": "0"}
    assert definition_defaults(VectorKind.LIGHT) == {"state": "Idle", "perm": "ro"}


@pytest.mark.parametrize(
    ("rule", "on", "reason"),
    [
        (SwitchRule.ONE_OF_MANY, 1, None),
        (SwitchRule.ONE_OF_MANY, 0, "choose exactly one"),
        (SwitchRule.ONE_OF_MANY, 2, "choose exactly one"),
        (SwitchRule.AT_MOST_ONE, 0, None),
        (SwitchRule.AT_MOST_ONE, 1, None),
        (SwitchRule.AT_MOST_ONE, 2, "choose at most one"),
        (SwitchRule.ANY_OF_MANY, 0, None),
        (SwitchRule.ANY_OF_MANY, 3, None),
    ],
)
def test_switch_rules(rule: SwitchRule, on: int, reason: str | None) -> None:
    assert rule.violation(on) == reason


def test_unknown_switch_rules_allow_anything() -> None:
    assert SwitchRule.parse("OneOfMany") is SwitchRule.ONE_OF_MANY
    assert SwitchRule.parse("") is SwitchRule.ANY_OF_MANY


def test_permissions() -> None:
    assert [p.writable for p in Permission] == [False, True, True]


def test_blob_instructions() -> None:
    assert BlobInstruction.parse(" Also ") is BlobInstruction.ALSO
    assert BlobInstruction.parse("always") is BlobInstruction.NEVER  # what indiserver assumes
    assert [i.sends_blobs for i in BlobInstruction] == [False, True, True]
