"""INDI's vocabulary (INDI protocol 1.7): tags, vector kinds, actions, states, permissions, switch
rules and BLOB instructions, with the defaults and rules the protocol attaches to them.

Every name is a :class:`~enum.StrEnum`, so a member compares equal to the XML string it stands for
(``Tag.GET_PROPERTIES == "getProperties"``) and can be written straight into XML or Redis.
"""

from __future__ import annotations

from enum import StrEnum


class VectorKind(StrEnum):
    """The five kinds of property vector."""

    TEXT = "Text"
    NUMBER = "Number"
    SWITCH = "Switch"
    LIGHT = "Light"
    BLOB = "BLOB"

    @property
    def vector(self) -> str:
        """The vector's name as stored and shown: ``TextVector``, ``NumberVector`` ..."""
        return f"{self.value}Vector"

    @property
    def writable(self) -> bool:
        """Whether a client may send a new value (lights are status only: no ``newLightVector``)."""
        return self is not VectorKind.LIGHT

    @property
    def has_rule(self) -> bool:
        """Whether a definition carries a switch rule."""
        return self is VectorKind.SWITCH

    def tag(self, action: Action) -> Tag:
        """The top-level tag of this kind of vector for ``action`` (``def`` + ``Number`` ...)."""
        return Tag(f"{action.value}{self.value}Vector")

    def member_tag(self, action: Action) -> str:
        """The tag of its members: ``defNumber`` in a definition, ``oneNumber`` otherwise."""
        return f"def{self.value}" if action is Action.DEF else f"one{self.value}"

    @classmethod
    def of_vector(cls, vector: str) -> VectorKind | None:
        """The kind named by a vector name (``"SwitchVector"``), or None."""
        try:
            return cls(vector.removesuffix("Vector"))
        except ValueError:
            return None


class Action(StrEnum):
    """What a vector message does: defines a property, sets its values, or asks for new ones."""

    DEF = "def"
    SET = "set"
    NEW = "new"


class Tag(StrEnum):
    """Every top-level INDI message tag."""

    DEF_TEXT_VECTOR = "defTextVector"
    DEF_NUMBER_VECTOR = "defNumberVector"
    DEF_SWITCH_VECTOR = "defSwitchVector"
    DEF_LIGHT_VECTOR = "defLightVector"
    DEF_BLOB_VECTOR = "defBLOBVector"
    SET_TEXT_VECTOR = "setTextVector"
    SET_NUMBER_VECTOR = "setNumberVector"
    SET_SWITCH_VECTOR = "setSwitchVector"
    SET_LIGHT_VECTOR = "setLightVector"
    SET_BLOB_VECTOR = "setBLOBVector"
    NEW_TEXT_VECTOR = "newTextVector"
    NEW_NUMBER_VECTOR = "newNumberVector"
    NEW_SWITCH_VECTOR = "newSwitchVector"
    NEW_BLOB_VECTOR = "newBLOBVector"
    MESSAGE = "message"
    DEL_PROPERTY = "delProperty"
    GET_PROPERTIES = "getProperties"
    ENABLE_BLOB = "enableBLOB"
    PING_REQUEST = "pingRequest"
    PING_REPLY = "pingReply"

    @property
    def action(self) -> Action | None:
        """``def``/``set``/``new`` for a vector tag, None for the others."""
        kind_action = VECTOR_TAGS.get(self)
        return kind_action[1] if kind_action else None

    @property
    def kind(self) -> VectorKind | None:
        """The vector kind of a vector tag, None for the others."""
        kind_action = VECTOR_TAGS.get(self)
        return kind_action[0] if kind_action else None

    @property
    def member_tag(self) -> str | None:
        """The tag a vector message's members must have (``defText``, ``oneSwitch`` ...), or None."""
        kind_action = VECTOR_TAGS.get(self)
        return kind_action[0].member_tag(kind_action[1]) if kind_action else None

    @property
    def from_device(self) -> bool:
        """Whether devices (drivers, indiserver) send this towards clients: definitions, values,
        messages and deletions."""
        return self in FROM_DEVICE_TAGS


#: every vector tag -> its kind and action
VECTOR_TAGS: dict[str, tuple[VectorKind, Action]] = {
    f"{action.value}{kind.value}Vector": (kind, action)
    for kind in VectorKind
    for action in Action
    if kind.writable or action is not Action.NEW
}

#: what a driver or indiserver sends towards clients
FROM_DEVICE_TAGS = frozenset(
    {tag for tag in Tag if tag.action in (Action.DEF, Action.SET)} | {Tag.MESSAGE, Tag.DEL_PROPERTY}
)

#: what changes which properties exist: definitions and deletions
LAYOUT_TAGS = frozenset({tag for tag in Tag if tag.action is Action.DEF} | {Tag.DEL_PROPERTY})


class PropertyState(StrEnum):
    """A property's state, shown as a light beside it."""

    IDLE = "Idle"
    OK = "Ok"
    BUSY = "Busy"
    ALERT = "Alert"


class Permission(StrEnum):
    """Whether clients may read and write a property."""

    RO = "ro"
    WO = "wo"
    RW = "rw"

    @property
    def writable(self) -> bool:
        """Whether a client may send new values."""
        return self is not Permission.RO


class SwitchRule(StrEnum):
    """How many switches of a vector may be On."""

    ONE_OF_MANY = "OneOfMany"
    AT_MOST_ONE = "AtMostOne"
    ANY_OF_MANY = "AnyOfMany"

    @classmethod
    def parse(cls, text: str) -> SwitchRule:
        """The rule ``text`` spells; ``AnyOfMany`` (no constraint, INDI's default) for anything else."""
        try:
            return cls(text.strip())
        except ValueError:
            return cls.ANY_OF_MANY

    def violation(self, on_count: int) -> str | None:
        """Why ``on_count`` switches On break the rule (a reason to show a user), or None if allowed."""
        if self is SwitchRule.ONE_OF_MANY and on_count != 1:
            return "choose exactly one"
        if self is SwitchRule.AT_MOST_ONE and on_count > 1:
            return "choose at most one"
        return None


class SwitchState(StrEnum):
    """The value of one switch."""

    ON = "On"
    OFF = "Off"


class BlobInstruction(StrEnum):
    """An ``enableBLOB`` instruction: whether a receiver gets BLOB data, other traffic, or both."""

    NEVER = "Never"
    ALSO = "Also"
    ONLY = "Only"

    @property
    def sends_blobs(self) -> bool:
        """Whether BLOB data reaches the receiver."""
        return self is not BlobInstruction.NEVER

    @classmethod
    def parse(cls, text: str) -> BlobInstruction:
        """The instruction ``text`` spells; ``Never`` for anything else (what indiserver assumes)."""
        try:
            return cls(text.strip())
        except ValueError:
            return cls.NEVER


# Defaults of a property definition, for the attributes a driver may leave out (INDI 1.7, and what the
# original indiredis stored).
DEFAULT_STATE = PropertyState.IDLE
DEFAULT_PERM = Permission.RO
DEFAULT_TIMEOUT = "0"
DEFAULT_RULE = SwitchRule.ANY_OF_MANY
DEFAULT_NUMBER_FORMAT = "%g"
#: number element fields defaulting to "0"
NUMBER_FIELDS = ("min", "max", "step")
DEFAULT_BLOB_INSTRUCTION = BlobInstruction.NEVER


def definition_defaults(kind: VectorKind) -> dict[str, str]:
    """The attributes a definition of ``kind`` has when the driver leaves them out.

    Every kind has a state; all but lights a permission and a timeout (lights are always read-only);
    switches a rule.
    """
    defaults = {"state": str(DEFAULT_STATE), "perm": str(DEFAULT_PERM)}
    if kind.writable:
        defaults["timeout"] = DEFAULT_TIMEOUT
    if kind.has_rule:
        defaults["rule"] = str(DEFAULT_RULE)
    return defaults
