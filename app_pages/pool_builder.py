"""The filter builder's widgets: conditions joined by AND, with OR groups, turned into the
pool filter JSON of DESIGN.md (crm.pools compiles and checks it; this only draws it).

State lives in st.session_state[STATE]: {"items": [...], "next": N, "pool_id": ...}, where
an item is {"id": n} (one condition) or {"id": n, "any": [{"id": m}, ...]} (an OR group).
Each condition's widgets are keyed pb_<id>_..., so tests can set them by key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import streamlit as st

from crm import field_registry, pool_filter, pools
from crm.errors import CrmError
from crm.field_registry import CONSENT_LABELS
from crm.models import APPLICATION_STAGES

STATE = "pool_builder"

# The candidate fields' filter labels, then the filters that are not fields; skills first,
# the filter most pools start from (and the one a new condition offers).
_LABELS = field_registry.labels(field_registry.FILTER) | {
    "pipeline_stage": "Pipeline stage",
    "engagement": "Engagement",
    "pool": "Pool membership",
}
FIELD_LABELS = {"skills": _LABELS["skills"]} | _LABELS
OP_LABELS = {
    "has_any": "has any of",
    "has_all": "has all of",
    "has_none": "has none of",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "in": "is one of",
    "not_in": "is none of",
    "contains": "contains",
    "eq": "is",
    "ne": "is not",
    "gte": "at least",
    "lte": "at most",
    "between": "between",
    "within_days": "within the last N days",
    "older_than_days": "more than N days ago, or never",
    "opened_within_days": "opened an email within N days",
    "clicked_within_days": "clicked a link within N days",
    "replied_within_days": "replied within N days",
    "engaged_within_days": "opened, clicked or replied within N days",
    "never_engaged": "never opened, clicked or replied",
    "before": "before",
    "after": "after",
}
_NO_VALUE = {"is_empty", "is_not_empty", "never_engaged"}
_SET_OPS = ["has_any", "has_all", "has_none", "is_empty", "is_not_empty"]
_TEXT_OPS = ["in", "not_in", "contains", "is_empty", "is_not_empty"]
_NUMBER_OPS = ["gte", "lte", "eq", "between", "is_empty", "is_not_empty"]
_DATE_OPS = ["within_days", "older_than_days", "is_empty", "is_not_empty"]
_CUSTOM_DATE_OPS = ["before", "after", "within_days", "is_empty", "is_not_empty"]


# --- state ---------------------------------------------------------------------------------


def state() -> dict[str, Any]:
    if STATE not in st.session_state:
        reset()
    return st.session_state[STATE]


def reset(pool_id: int | None = None) -> None:
    """An empty builder with one blank condition (pool_id: the pool being edited)."""
    for key in [k for k in st.session_state if str(k).startswith("pb_")]:
        del st.session_state[key]
    st.session_state[STATE] = {"items": [{"id": 1}], "next": 2, "pool_id": pool_id}


def _new_id(data: dict[str, Any]) -> int:
    data["next"] += 1
    return data["next"] - 1


def add_condition() -> None:
    data = state()
    data["items"].append({"id": _new_id(data)})


def add_group() -> None:
    data = state()
    data["items"].append({"id": _new_id(data), "any": [{"id": _new_id(data)}]})


def add_to_group(group_id: int) -> None:
    data = state()
    for item in data["items"]:
        if item["id"] == group_id:
            item["any"].append({"id": _new_id(data)})


def remove(condition_id: int) -> None:
    data = state()
    kept = []
    for item in data["items"]:
        if item["id"] == condition_id:
            continue
        if "any" in item:
            item["any"] = [c for c in item["any"] if c["id"] != condition_id]
            if not item["any"]:
                continue
        kept.append(item)
    data["items"] = kept


def load(filter_json: Any, *, pool_id: int | None = None) -> bool:
    """Put a saved filter into the builder; False if it nests deeper than the builder draws
    (AND of conditions and OR groups), or breaks a limit (a pool saved before it), in which
    case it is edited as JSON and the preview says what is wrong."""
    reset(pool_id)
    data = state()
    try:
        pool_filter.check_filter(filter_json)
    except CrmError:
        data["json"] = filter_json
        data["json_reason"] = "This filter breaks a limit (said below); edit it as JSON."
        return False
    if isinstance(filter_json, dict) and "field" in filter_json:
        filter_json = {"all": [filter_json]}
    if isinstance(filter_json, dict) and isinstance(filter_json.get("any"), list):
        filter_json = {"all": [filter_json]}
    if not isinstance(filter_json, dict) or not isinstance(filter_json.get("all"), list):
        data["json"] = filter_json
        return False
    items: list[dict[str, Any]] = []
    for child in filter_json["all"]:
        if isinstance(child, dict) and "field" in child:
            cid = _new_id(data)
            _seed(cid, child)
            items.append({"id": cid})
        elif (
            isinstance(child, dict)
            and isinstance(child.get("any"), list)
            and all(isinstance(c, dict) and "field" in c for c in child["any"])
        ):
            group = {"id": _new_id(data), "any": []}
            for condition in child["any"]:
                cid = _new_id(data)
                _seed(cid, condition)
                group["any"].append({"id": cid})
            items.append(group)
        else:
            reset(pool_id)
            state()["json"] = filter_json
            return False
    data["items"] = items or [{"id": _new_id(data)}]
    return True


def _seed(cid: int, condition: dict[str, Any]) -> None:
    """Set a condition's widget values from its JSON (before the widgets are drawn)."""
    field, op, value = condition.get("field"), condition.get("op"), condition.get("value")
    numeric = field in {"remote", "years_experience"} or (
        str(field).startswith(pool_filter.CUSTOM_PREFIX) and isinstance(value, int | float)
    )
    if op in {"eq", "ne"} and not numeric:  # the builder offers "is one of" for text
        op, value = ("in" if op == "eq" else "not_in"), [value]
    st.session_state[f"pb_{cid}_field"] = field
    st.session_state[f"pb_{cid}_op"] = op
    if op in _NO_VALUE or value is None:
        return
    if isinstance(value, bool):
        st.session_state[f"pb_{cid}_bool"] = "yes" if value else "no"
    elif isinstance(value, list) and op == "between":
        st.session_state[f"pb_{cid}_low"], st.session_state[f"pb_{cid}_high"] = value
    elif isinstance(value, list):
        st.session_state[f"pb_{cid}_list"] = [str(v) for v in value]
    elif isinstance(value, int | float):
        st.session_state[f"pb_{cid}_number"] = value
    elif op in {"before", "after"}:
        with contextlib.suppress(ValueError):  # a bad date leaves the widget empty
            st.session_state[f"pb_{cid}_date"] = dt.date.fromisoformat(str(value))
    else:
        st.session_state[f"pb_{cid}_text"] = str(value)


# --- drawing -------------------------------------------------------------------------------


def _custom(options: pools.FilterOptions) -> dict[str, tuple[str, str, list[str]]]:
    return {
        f"{pool_filter.CUSTOM_PREFIX}{key}": (label, kind, choices)
        for key, label, kind, choices in options.custom_fields
    }


def _field_label(options: pools.FilterOptions) -> Any:
    custom = _custom(options)

    def label(field: str) -> str:
        if field in custom:
            return f"{custom[field][0]} (custom)"
        return FIELD_LABELS.get(field, field)

    return label


def _ops(field: str, options: pools.FilterOptions) -> list[str]:
    custom = _custom(options)
    if field in custom:
        kind = custom[field][1]
        return {"number": _NUMBER_OPS, "date": _CUSTOM_DATE_OPS}.get(kind, _TEXT_OPS)
    if field in {"skills", "tags"}:
        return _SET_OPS
    if field == "years_experience":
        return _NUMBER_OPS
    if field in {"last_contacted_at", "last_engaged_at", "created_at"}:
        return _DATE_OPS
    if field == "remote":
        return ["eq"]
    if field == "owner":
        return ["in", "is_empty", "is_not_empty"]
    if field in {"pool", "pipeline_stage", "consent_status"}:
        return ["in", "not_in"]
    if field == "engagement":
        return list(pool_filter.ENGAGEMENT_OPS)
    return _TEXT_OPS


def _suggestions(field: str, options: pools.FilterOptions) -> tuple[list[str], bool]:
    """(choices, whether other values may be typed) for a list value."""
    custom = _custom(options)
    if field in custom:
        label, kind, choices = custom[field]
        return (choices, False) if kind == "choice" else ([], True)
    fixed = {
        "pool": options.pools,
        "pipeline_stage": list(APPLICATION_STAGES),
        "consent_status": list(CONSENT_LABELS),
        "owner": options.owners,
    }
    if field in fixed:
        return fixed[field], False
    suggested = {
        "skills": options.skills,
        "tags": options.tags,
        "location": options.locations,
        "role_family": options.role_families,
        "source": options.sources,
    }
    return suggested.get(field, []), True


def _value(cid: int, field: str, op: str, options: pools.FilterOptions, box: Any) -> Any:
    """Draw the value widget for the condition and return its value (None: not given)."""
    custom = _custom(options)
    kind = custom[field][1] if field in custom else None
    if op in _NO_VALUE:
        box.caption("no value needed")
        return None
    if field == "remote":
        answer = box.selectbox(
            "Value", ["yes", "no"], key=f"pb_{cid}_bool", label_visibility="collapsed"
        )
        return answer == "yes"
    if op in {"before", "after"}:
        day = box.date_input("Date", value=None, key=f"pb_{cid}_date", label_visibility="collapsed")
        return day.isoformat() if day else None
    if op == "between":
        low_box, high_box = box.columns(2)
        low = low_box.number_input("From", min_value=0.0, step=1.0, key=f"pb_{cid}_low")
        high = high_box.number_input("To", min_value=0.0, step=1.0, key=f"pb_{cid}_high")
        return [low, high]
    if (
        op.endswith("_days")
        or field == "years_experience"
        or kind == "number"
        or op in {"gte", "lte", "eq"}
    ):
        unit = "days" if op.endswith("_days") else "value"
        number = box.number_input(
            unit.capitalize(),
            min_value=0.0 if unit == "days" or field == "years_experience" else None,
            value=None,
            step=1.0,
            placeholder="days" if unit == "days" else "a number",
            key=f"pb_{cid}_number",
            label_visibility="collapsed",
        )
        if number is None:
            return None
        return int(number) if float(number).is_integer() else number
    if op == "contains":
        typed = box.text_input(
            "Text", key=f"pb_{cid}_text", placeholder="some text", label_visibility="collapsed"
        )
        return typed.strip() or None
    choices, free = _suggestions(field, options)
    chosen = box.multiselect(
        "Values",
        choices,
        key=f"pb_{cid}_list",
        accept_new_options=free,
        placeholder="Choose or type values" if free else "Choose values",
        format_func=(CONSENT_LABELS.get if field == "consent_status" else str),
        label_visibility="collapsed",
    )
    return list(chosen) or None


def _condition(cid: int, options: pools.FilterOptions, fields: list[str]) -> dict | None:
    field_box, op_box, value_box, remove_box = st.columns([3, 3, 5, 1], vertical_alignment="top")
    field_key, op_key = f"pb_{cid}_field", f"pb_{cid}_op"
    if st.session_state.get(field_key) not in fields:
        st.session_state[field_key] = "skills"
    field = field_box.selectbox(
        "Field",
        fields,
        key=field_key,
        format_func=_field_label(options),
        label_visibility="collapsed",
    )
    ops = _ops(field, options)
    if st.session_state.get(op_key) not in ops:
        st.session_state[op_key] = ops[0]
    op = op_box.selectbox(
        "Operator", ops, key=op_key, format_func=OP_LABELS.get, label_visibility="collapsed"
    )
    value = _value(cid, field, op, options, value_box)
    remove_box.button(
        ":material/close:", key=f"pb_{cid}_remove", on_click=remove, args=(cid,), help="Remove"
    )
    if op in _NO_VALUE:
        return {"field": field, "op": op}
    if value is None:
        return None  # not finished yet: left out of the filter
    return {"field": field, "op": op, "value": value}


def draw(options: pools.FilterOptions) -> tuple[dict[str, Any], int]:
    """Draw the builder; returns the filter JSON and how many conditions are unfinished."""
    data = state()
    fields = list(FIELD_LABELS) + list(_custom(options))
    parts: list[dict[str, Any]] = []
    unfinished = 0
    for index, item in enumerate(data["items"]):
        if index:
            st.caption("AND")
        if "any" not in item:
            condition = _condition(item["id"], options, fields)
            unfinished += condition is None
            if condition:
                parts.append(condition)
            continue
        with st.container(border=True):
            st.caption("Any of these (OR)")
            alternatives = []
            for condition_item in item["any"]:
                condition = _condition(condition_item["id"], options, fields)
                unfinished += condition is None
                if condition:
                    alternatives.append(condition)
            st.button(
                "Add an alternative",
                key=f"pb_{item['id']}_add",
                icon=":material/add:",
                on_click=add_to_group,
                args=(item["id"],),
            )
        if alternatives:
            parts.append({"any": alternatives})
    left, right, _ = st.columns([2, 2, 4])
    left.button("Add a condition", icon=":material/add:", on_click=add_condition)
    right.button("Add an OR group", icon=":material/alt_route:", on_click=add_group)
    return {"all": parts}, unfinished
