"""The JSON templates of the store's writes give exactly what the general encoders give."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from indiredis.store.writes import JsonTemplate, Writes, quote, to_json

# names and values as devices send them, with what JSON must escape (quotes, backslashes, control
# and non-ASCII characters) and what printf formats must not see ("%")
TEXT = st.text(alphabet=st.sampled_from('ab1:.-%"\\\n\x00é\u2028 '), max_size=8) | st.text(max_size=6)
DYNAMIC = frozenset({"value", "timestamp"})


class Gathered(Writes):
    """Writes that keep the items instead of sending them."""

    def __init__(self) -> None:
        super().__init__("from_indi")

    def items(self) -> list[str]:
        return self._items


@settings(max_examples=300, deadline=None)
@given(
    fixed=st.dictionaries(TEXT, TEXT, max_size=4),
    first=st.tuples(TEXT, TEXT),
    later=st.tuples(TEXT, TEXT),
    key=TEXT,
)
def test_a_templates_write_is_the_general_one(
    fixed: dict[str, str], first: tuple[str, str], later: tuple[str, str], key: str
) -> None:
    data = {name: value for name, value in fixed.items() if name not in DYNAMIC}
    data["value"], data["timestamp"] = first
    template = JsonTemplate(data, DYNAMIC, quote(key), quote("log:" + key), 20)
    data["value"], data["timestamp"] = later
    payload, fields = template.render(data)
    assert payload == to_json(data)
    assert json.loads("[" + fields + "]") == ["timestamp", data["timestamp"], "value", data["value"]]
    general = Gathered()
    general.hash(quote(key), quote("log:" + key), payload, 20, fields)
    item = template.item(data)
    if item is not None:
        assert item == general.items()[0]
    else:  # only values that need escaping take the general way
        assert any(c in '"\\' or not " " <= c <= "~" for c in data["value"] + data["timestamp"])
    decoded = json.loads(general.items()[0])
    assert decoded == [key, "log:" + key, to_json(data), 20, json.loads("[" + fields + "]")]
