"""Model column types: the stored form of skill lists."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from crm.models import TextList, encode_items


@given(st.lists(st.text(max_size=12), max_size=6))
def test_encode_items_is_compact_json(items: list[str]) -> None:
    stored = encode_items(items)
    assert stored == json.dumps(items, ensure_ascii=False, separators=(",", ":"))
    assert TextList().process_result_value(stored, None) == items
