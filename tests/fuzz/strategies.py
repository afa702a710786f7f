"""Hypothesis strategies: a model of INDI 1.7 messages and the hostile bytes around them."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from hypothesis import strategies as st

KINDS = ("Text", "Number", "Switch", "Light", "BLOB")

# XML-legal characters (no control characters but tab/newline), entities come from escaping
xml_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=30,
)
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs"), blacklist_characters="\ufffe\uffff"),
    min_size=1,
    max_size=20,
)


@dataclass(frozen=True)
class ModelMessage:
    """What a message should parse to, and its XML with attributes in the given order."""

    tag: str
    attrs: tuple[tuple[str, str], ...]
    members: tuple[tuple[str, tuple[tuple[str, str], ...], str], ...]

    def xml(self) -> bytes:
        attrs = "".join(f" {k}={quoteattr(v)}" for k, v in self.attrs)
        if not self.members and self.tag != "enableBLOB":
            return f"<{self.tag}{attrs}/>".encode()
        body = "".join(
            f"<{tag}" + "".join(f" {k}={quoteattr(v)}" for k, v in mattrs) + f">{escape(text)}</{tag}>"
            for tag, mattrs, text in self.members
        )
        if self.tag == "enableBLOB":
            body = "Also"
        return f"<{self.tag}{attrs}>{body}</{self.tag}>".encode()


def _unique(pairs: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    for key, value in pairs:
        seen.setdefault(key, value)
    return tuple(seen.items())


extra_attrs = st.lists(
    st.tuples(
        st.sampled_from(["label", "group", "state", "perm", "timeout", "timestamp", "x-unknown", "rule"]),
        xml_text,
    ),
    max_size=4,
)


@st.composite
def vector_messages(draw) -> ModelMessage:
    action = draw(st.sampled_from(["def", "set", "new"]))
    kind = draw(st.sampled_from(KINDS if action != "new" else ("Text", "Number", "Switch", "BLOB")))
    tag = f"{action}{kind}Vector"
    member_tag = f"def{kind}" if action == "def" else f"one{kind}"
    attrs = [("device", draw(names)), ("name", draw(names))] + draw(extra_attrs)
    attrs = draw(st.permutations(_unique(attrs)))
    members = []
    for element in draw(st.lists(names, min_size=1, max_size=4, unique=True)):
        member_attrs = [("name", element)] + draw(
            st.lists(st.tuples(st.sampled_from(["label", "format", "min", "size"]), xml_text), max_size=2)
        )
        members.append(
            (member_tag, tuple(draw(st.permutations(_unique(member_attrs)))), draw(xml_text).strip())
        )
    return ModelMessage(tag, tuple(attrs), tuple(members))


@st.composite
def plain_messages(draw) -> ModelMessage:
    tag = draw(st.sampled_from(["message", "delProperty", "getProperties", "enableBLOB"]))
    attrs = [("device", draw(names))]
    if draw(st.booleans()):
        attrs.append(("name", draw(names)))
    if tag == "message":
        attrs.append(("message", draw(xml_text)))
    if tag == "getProperties":
        attrs.append(("version", "1.7"))
    return ModelMessage(tag, tuple(draw(st.permutations(attrs))), ())


model_messages = st.one_of(vector_messages(), plain_messages())

garbage = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"<",
            b"</setNumberVector>",
            b"<oneNumber name='x'>",
            b"<!--",
            b"<?xml",
            b"<!DOCTYPE a [<!ENTITY b 'c'>]>",
            b"<![CDATA[",
            b"&amp;",
            b"&bogus;",
            b"\xff\xfe\x00",
            b'<message device="',
            b"<bogus>",
            b"<setTextVector device='a' name='b'>",
            b"<defNumberVector device='d' name='n'><defNumber name='e'>1</defNumber>",
        ]
    ),
)
