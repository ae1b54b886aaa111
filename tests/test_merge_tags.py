"""Merge tags: the small allow-listed syntax, its refusals and its rendering."""

from __future__ import annotations

import html
from types import SimpleNamespace

import pytest

from crm import merge_tags
from crm.errors import ValidationError

ALLOWED = merge_tags.available_fields(["github"])


def test_tags_and_fallbacks_render() -> None:
    template = merge_tags.parse(
        "Hi {{first_name|there}}, {{ company }} {{skills}}", allowed=ALLOWED
    )
    assert template.fields == {"first_name", "company", "skills"}
    assert template.render({"first_name": "Ana", "company": "Acme", "skills": "go"}) == (
        "Hi Ana, Acme go"
    )
    assert template.render({"first_name": "", "company": None}) == "Hi there,  "


def test_missing_lists_tags_without_value_or_fallback() -> None:
    template = merge_tags.parse(
        "{{first_name|there}} {{company}} {{company}} {{unsubscribe_url}}", allowed=ALLOWED
    )
    assert template.missing({"first_name": None, "company": None}) == ["company"]
    assert template.missing({"company": "Acme"}) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Hello\n{{fist_name}}", "line 2: unknown merge tag {{fist_name}}"),
        ("Hello {{first_name", "line 1: a merge tag is not closed"),
        ("Hello first_name}}", "line 1: a merge tag is not closed or opened"),
        ("a\nb\n{{}}", "line 3: an empty merge tag"),
        ("{{first_name.__class__}}", "unknown merge tag"),
        ("{{ first_name | x }} {{ {{email}} }}", "not closed properly"),
        ("{% for x in y %}{{first_name}}", None),
        ("{{password_hash}}", "unknown merge tag {{password_hash}}"),
        ("{{first_name|" + "x" * 201 + "}}", "a fallback can be at most 200"),
    ],
)
def test_bad_templates_are_refused_with_the_line(text: str, message: str | None) -> None:
    if message is None:
        # Jinja-like syntax is just text here: it is neither run nor refused.
        assert merge_tags.parse(text, allowed=ALLOWED).render({"first_name": "A"}) == (
            "{% for x in y %}A"
        )
        return
    with pytest.raises(ValidationError) as error:
        merge_tags.parse(text, allowed=ALLOWED, where="Step 1's message")
    assert message in str(error.value)
    assert str(error.value).startswith("Step 1's message")


def test_custom_fields_and_sender_fields_are_allowed() -> None:
    template = merge_tags.parse("{{github}} from {{sender_first_name}}", allowed=ALLOWED)
    candidate = SimpleNamespace(first_name="Ana", last_name="Lee", skills=["go", "rust"])
    values = merge_tags.values_for(
        candidate, custom_fields={"github": "ana-l"}, sender_name="Rita Recruiter"
    )
    assert template.render(values) == "ana-l from Rita"
    assert values["full_name"] == "Ana Lee"
    assert values["skills"] == "go, rust"
    assert values["top_skill"] == "go"


def test_values_are_escaped_only_where_asked() -> None:
    template = merge_tags.parse("<b>{{company}}</b>", allowed=ALLOWED)
    values = {"company": "<script>alert(1)</script>"}
    assert template.render(values, escape=html.escape) == (
        "<b>&lt;script&gt;alert(1)&lt;/script&gt;</b>"
    )


def test_a_value_that_looks_like_a_tag_is_not_expanded() -> None:
    template = merge_tags.parse("Hi {{first_name}}", allowed=ALLOWED)
    assert template.render({"first_name": "{{email}}", "email": "x@y.z"}) == "Hi {{email}}"
