"""The Settings page under AppTest: the campaign frequency cap, the team's money."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from crm import jobs, money, outbox
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


def money_table(at) -> list[tuple[str, int, str]]:
    [table] = [d.value for d in at.dataframe if "counted" in d.value.columns]
    return list(zip(table["currency"], table["costs"], table["counted"], strict=True))


def submit(at, label: str):
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, at.exception
    return at


def test_admin_sets_the_team_money(users: dict[str, User], engine: Engine) -> None:
    jobs.add_cost(
        engine, actor=users["recruiter"], amount=Decimal(100), category="tools",
        incurred_on=dt.date(2026, 1, 5),
    )  # fmt: skip
    at = app_as(users["admin"]).run()
    at.switch_page("app_pages/settings.py").run()
    assert not at.exception, at.exception
    assert money_table(at) == [("USD", 1, "team currency")]
    # EUR without a USD rate would leave the USD cost uncounted: refused, nothing saved.
    [currency] = [t for t in at.text_input if t.label == "Team currency"]
    currency.input("EUR")
    submit(at, "Change the currency")
    assert at.error[0].value == (
        "1 cost is in USD, which the team could not count in EUR without a USD rate; "
        "enter it with the change."
    )
    assert money.team_money(engine) == money.TeamMoney()
    at.text_area[0].input("USD = 0.9")
    submit(at, "Change the currency")
    assert at.success[0].value == "Cost figures are now in EUR."
    assert money_table(at) == [("USD", 1, "at 0.9")]
    [code] = [t for t in at.text_input if t.label == "Currency"]
    code.input("gbp")
    [rate] = [t for t in at.text_input if t.label.startswith("Rate (1 unit")]
    rate.input("1.17")
    submit(at, "Save the rate")
    assert at.success[0].value == "1 GBP now counts as 1.17 EUR."
    assert money_table(at) == [("USD", 1, "at 0.9"), ("GBP", 0, "at 1.17")]
    at.selectbox[0].set_value("USD")
    submit(at, "Remove the rate")
    assert at.error[0].value == (
        "1 cost is in USD, which the team could not count in EUR without a USD rate, "
        "so the rate stays."
    )
    at.selectbox[0].set_value("GBP")
    submit(at, "Remove the rate")
    assert at.success[0].value == "Removed the GBP rate."
    assert money.team_money(engine) == money.TeamMoney("EUR", {"USD": Decimal("0.9")})


def test_a_rate_must_be_a_positive_number(users: dict[str, User], engine: Engine) -> None:
    at = app_as(users["admin"]).run()
    at.switch_page("app_pages/settings.py").run()
    [code] = [t for t in at.text_input if t.label == "Currency"]
    code.input("EUR")
    [rate] = [t for t in at.text_input if t.label.startswith("Rate (1 unit")]
    rate.input("-1")
    submit(at, "Save the rate")
    assert at.error[0].value == (
        "The EUR rate must be a positive number, such as 0.92 (1 EUR = 0.92 USD)."
    )
    assert money.team_money(engine) == money.TeamMoney()
