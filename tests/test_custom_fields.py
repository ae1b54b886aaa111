"""Custom candidate fields: definitions by admins, values checked on every save."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from crm import candidates, custom_fields
from crm.errors import PermissionDenied, ValidationError
from crm.models import User
from tests.test_page_profile import open_profile, save


def test_admin_defines_fields_and_values_are_checked(
    users: dict[str, User], engine: Engine
) -> None:
    with pytest.raises(PermissionDenied):
        custom_fields.create_field(engine, actor=users["recruiter"], label="Notice", kind="text")
    custom_fields.create_field(
        engine,
        actor=users["admin"],
        label="Notice period",
        kind="choice",
        choices=["Immediate", "1 month", "3 months"],
    )
    custom_fields.create_field(
        engine, actor=users["admin"], label="Salary expectation", kind="number"
    )
    custom_fields.create_field(engine, actor=users["admin"], label="Available from", kind="date")
    with pytest.raises(ValidationError, match="already a custom field"):
        custom_fields.create_field(
            engine, actor=users["admin"], label="Notice  Period", kind="text"
        )
    with pytest.raises(ValidationError, match="at least two choices"):
        custom_fields.create_field(
            engine, actor=users["admin"], label="Pick", kind="choice", choices=["a"]
        )
    ana = candidates.create_candidate(
        engine, actor=users["recruiter"], fields={"first_name": "Ana", "email": "ana@x.io"}
    )
    updated = candidates.update_candidate(
        engine,
        actor=users["recruiter"],
        candidate_id=ana.id,
        expected_version=ana.version,
        fields={
            "custom_fields": {
                "notice_period": "1 month",
                "salary_expectation": "85000",
                "available_from": "2027-01-15",
            }
        },
    )
    assert updated.custom_fields == {
        "notice_period": "1 month",
        "salary_expectation": 85000,
        "available_from": "2027-01-15",
    }
    with pytest.raises(ValidationError, match="must be one of Immediate, 1 month, 3 months"):
        candidates.update_candidate(
            engine,
            actor=users["recruiter"],
            candidate_id=ana.id,
            expected_version=updated.version,
            fields={"custom_fields": {"notice_period": "2 years"}},
        )
    with pytest.raises(ValidationError, match="There is no custom field 'shoe_size'"):
        candidates.update_candidate(
            engine,
            actor=users["recruiter"],
            candidate_id=ana.id,
            expected_version=updated.version,
            fields={"custom_fields": {"shoe_size": "44"}},
        )


def test_profile_page_edits_custom_fields(users: dict[str, User], engine: Engine) -> None:
    custom_fields.create_field(
        engine,
        actor=users["admin"],
        label="Notice period",
        kind="choice",
        choices=["Immediate", "1 month"],
    )
    ana = candidates.create_candidate(
        engine, actor=users["recruiter"], fields={"first_name": "Ana", "email": "ana@x.io"}
    )
    at = open_profile(users["recruiter"], ana.id)
    next(s for s in at.selectbox if s.label == "Notice period").select("1 month")
    save(at)
    assert not at.exception
    assert candidates.get_candidate(engine, ana.id).custom_fields == {"notice_period": "1 month"}


def test_admin_adds_a_field_on_the_settings_page(users: dict[str, User], engine: Engine) -> None:
    from tests.test_app import app_as

    at = app_as(users["admin"]).run()
    at.switch_page("app_pages/settings.py").run()
    next(b for b in at.button if b.label == "Add a field").click().run()
    next(w for w in at.text_input if w.label == "Field label").input("Notice period")
    at.button(key="FormSubmitter:add_custom_field-Add field").click().run()
    assert not at.exception
    assert at.success[0].value == "Added the field Notice period."
    assert [f.label for f in custom_fields.list_fields(engine)] == ["Notice period"]
