"""The Settings page under AppTest: the campaign frequency cap."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from crm import outbox
from crm.errors import PermissionDenied, ValidationError
from crm.models import User
from tests.test_app import app_as


def test_admin_changes_the_frequency_cap(users: dict[str, User], engine: Engine) -> None:
    at = app_as(users["admin"]).run()
    at.switch_page("app_pages/settings.py").run()
    assert not at.exception, at.exception
    emails, days = at.number_input[0], at.number_input[1]
    assert (emails.value, days.value) == (2, 7)
    emails.set_value(3)
    days.set_value(14)
    [save] = [b for b in at.button if b.label == "Save the cap"]
    save.click().run()
    assert not at.exception, at.exception
    assert outbox.current_frequency_cap(engine) == (3, 14)
    assert "at most 3 emails per person in 14 days" in at.success[0].value


def test_only_admins_and_sane_values(users: dict[str, User], engine: Engine) -> None:
    with pytest.raises(PermissionDenied):
        outbox.set_frequency_cap(engine, actor=users["recruiter"], emails=5, days=7)
    with pytest.raises(ValidationError, match="1 to 50 emails in 1 to 90 days"):
        outbox.set_frequency_cap(engine, actor=users["admin"], emails=0, days=7)
    assert outbox.current_frequency_cap(engine) == (2, 7)
