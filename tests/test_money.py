"""The team's currency and rates, costs filed under categories, and figures in one currency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from crm import clock, db, demo, jobs, metrics, money, pool_yield
from crm.errors import PermissionDenied, ValidationError
from crm.models import AuditLog, Candidate, Cost, User

JANUARY = {"start": dt.date(2026, 1, 1), "end": dt.date(2026, 1, 31)}


def count_costs(engine: Engine) -> int:
    with db.read_session(engine) as session:
        return session.scalar(select(func.count()).select_from(Cost)) or 0


def audited(engine: Engine, action: str) -> list[dict]:
    with db.read_session(engine) as session:
        return [
            entry.detail or {}
            for entry in session.scalars(
                select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
            )
        ]


def euro_team(engine: Engine, admin: User) -> None:
    """The team counts in EUR; 1 USD = 0.9 EUR."""
    money.set_team_currency(engine, actor=admin, currency="eur", rates={"USD": "0.9"})


def add(engine: Engine, actor: User, amount: str, category: str, currency: str, **more) -> int:
    return jobs.add_cost(
        engine,
        actor=actor,
        amount=Decimal(amount),
        category=category,
        currency=currency,
        incurred_on=more.pop("incurred_on", dt.date(2026, 1, 10)),
        **more,
    )


def hire(engine: Engine, actor: User, title: str, source: str, day: str) -> int:
    """A job and one person hired into it from `source` on `day`."""
    job_id = jobs.create_job(engine, actor=actor, title=title, opened_at=dt.date(2025, 12, 1))
    with db.write_session(engine) as session:
        person = Candidate(first_name=title, last_name="Hire")
        session.add(person)
        session.flush()
        person_id = person.id
    jobs.add_application(
        engine,
        actor=actor,
        job_id=job_id,
        candidate_id=person_id,
        source=source,
        stage="hired",
        at=dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC),
    )
    return job_id


# --- categories ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "filed"),
    [
        ("job_ads", ("job_ads", None)),
        ("Job board", ("job_ads", None)),
        ("ADVERTISING", ("job_ads", None)),
        ("ads", ("job_ads", None)),
        ("Agency", ("agency_fees", None)),
        ("recruitment agency", ("agency_fees", None)),
        ("Head-hunter", ("other", "Head-hunter")),  # not a synonym as written
        ("headhunter", ("agency_fees", None)),
        ("Software", ("tools", None)),
        ("ATS", ("tools", None)),
        ("subscription", ("tools", None)),
        ("Assessment tools", ("tools", None)),
        ("recruiter hours", ("recruiter_time", None)),
        ("Salaries", ("recruiter_time", None)),
        ("recruiter_time", ("recruiter_time", None)),
        ("Career fair", ("events", None)),
        ("meetup", ("events", None)),
        ("Other", ("other", None)),
        ("  Sign-on   bonus ", ("other", "Sign-on bonus")),
        ("Relocation", ("other", "Relocation")),
        ("Background check", ("other", "Background check")),
        ("", ("other", None)),
        ("   ", ("other", None)),
        (None, ("other", None)),
    ],
)
def test_file_category_never_refuses(text: str | None, filed: tuple[str, str | None]) -> None:
    assert money.file_category(text) == filed


def test_a_long_label_is_cut_to_the_column() -> None:
    category, label = money.file_category("x" * 200)
    assert category == "other" and label == "x" * 79 + "…" and len(label) == 80
    assert money.category_text("other", "Relocation") == "Other: Relocation"
    assert money.category_text("agency_fees", None) == "Agency fees"


# --- the team's currency and rates ----------------------------------------------------------


def test_unset_the_team_counts_in_usd_without_rates(engine: Engine) -> None:
    team = money.team_money(engine)
    assert (team.currency, dict(team.rates)) == ("USD", {})
    assert money.rates_note(team) is None
    assert money.figures_note(engine) is None


def test_admin_sets_currency_and_rates(engine: Engine, users: dict[str, User]) -> None:
    admin = users["admin"]
    euro_team(engine, admin)
    money.set_rate(engine, actor=admin, currency="gbp", rate=Decimal("1.17"))
    team = money.team_money(engine)
    assert team.currency == "EUR"
    assert dict(team.rates) == {"USD": Decimal("0.9"), "GBP": Decimal("1.17")}
    assert money.rates_note(team) == "In EUR; GBP converted at 1.17, USD at 0.9."
    money.set_rate(engine, actor=admin, currency="USD", rate="0.92")
    assert money.team_money(engine).rates["USD"] == Decimal("0.92")
    money.remove_rate(engine, actor=admin, currency="GBP")  # no cost is in GBP
    assert dict(money.team_money(engine).rates) == {"USD": Decimal("0.92")}
    assert [d["currency"] for d in audited(engine, "settings.currency")] == ["EUR"]
    assert audited(engine, "settings.rate")[1] == {
        "currency": "USD",
        "rate": "0.92",
        "previous": "0.9",
        "team_currency": "EUR",
    }
    assert audited(engine, "settings.rate_remove") == [{"currency": "GBP", "rate": "1.17"}]


def test_only_admins_and_sane_values(engine: Engine, users: dict[str, User]) -> None:
    admin, recruiter = users["admin"], users["recruiter"]
    with pytest.raises(PermissionDenied):
        money.set_team_currency(engine, actor=recruiter, currency="EUR")
    with pytest.raises(PermissionDenied):
        money.set_rate(engine, actor=users["manager"], currency="EUR", rate="1.1")
    with pytest.raises(ValidationError, match="three-letter code such as USD"):
        money.set_team_currency(engine, actor=admin, currency="euro")
    with pytest.raises(ValidationError, match="three-letter code"):
        money.set_rate(engine, actor=admin, currency="E1R", rate="1")
    for rate in ("abc", "0", "-1.2", "NaN", "Infinity", "2000000"):
        with pytest.raises(
            ValidationError,
            match=r"^The EUR rate must be a positive number, such as 0.92 \(1 EUR = 0.92 USD\)\.$",
        ):
            money.set_rate(engine, actor=admin, currency="EUR", rate=rate)
    with pytest.raises(ValidationError, match="at most 10 decimals"):
        money.set_rate(engine, actor=admin, currency="EUR", rate="0.00000000001")
    with pytest.raises(ValidationError, match="^USD is the team currency; it needs no rate.$"):
        money.set_rate(engine, actor=admin, currency="usd", rate="1")
    with pytest.raises(ValidationError, match="^There is no GBP rate to remove.$"):
        money.remove_rate(engine, actor=admin, currency="GBP")
    assert money.team_money(engine) == money.TeamMoney()
    assert audited(engine, "settings.rate") == []


# --- every stored cost is convertible -----------------------------------------------------


def test_a_cost_the_team_cannot_count_is_refused(engine: Engine, users: dict[str, User]) -> None:
    euro_team(engine, users["admin"])
    with pytest.raises(ValidationError) as refused:
        add(engine, users["recruiter"], "100", "tools", "gbp")
    assert str(refused.value) == (
        "This cost is in GBP but the team counts in EUR and has no GBP rate; an admin can "
        "enter one in Settings → Money."
    )
    assert count_costs(engine) == 0
    # Without a currency a cost is in the team's.
    cost_id = jobs.add_cost(
        engine,
        actor=users["recruiter"],
        amount=Decimal(40),
        category="Background check",
        incurred_on=dt.date(2026, 1, 5),
    )
    [view] = jobs.list_costs(engine)
    assert (view.id, view.currency, view.category, view.category_label) == (
        cost_id,
        "EUR",
        "other",
        "Background check",
    )
    assert view.category_text == "Other: Background check"


def test_removing_a_rate_in_use_is_refused(engine: Engine, users: dict[str, User]) -> None:
    admin, recruiter = users["admin"], users["recruiter"]
    euro_team(engine, admin)
    first = add(engine, recruiter, "500", "job ads", "USD")
    add(engine, recruiter, "20", "tools", "USD")
    with pytest.raises(ValidationError) as refused:
        money.remove_rate(engine, actor=admin, currency="USD")
    assert str(refused.value) == (
        "2 costs are in USD, which the team could not count in EUR without a USD rate, "
        "so the rate stays."
    )
    assert money.team_money(engine).rates == {"USD": Decimal("0.9")}
    with pytest.raises(ValidationError, match="^2 costs are in USD, .* enter it with the change"):
        money.set_team_currency(engine, actor=admin, currency="GBP")
    assert money.team_money(engine).currency == "EUR"
    jobs.delete_cost(engine, actor=recruiter, cost_id=first)
    with pytest.raises(ValidationError, match="^1 cost is in USD, "):
        money.remove_rate(engine, actor=admin, currency="USD")


def test_changing_the_currency_takes_the_new_rates(engine: Engine, users: dict[str, User]) -> None:
    admin, recruiter = users["admin"], users["recruiter"]
    euro_team(engine, admin)
    add(engine, recruiter, "100", "tools", "EUR")
    add(engine, recruiter, "100", "tools", "USD")
    with pytest.raises(ValidationError) as refused:
        money.set_team_currency(engine, actor=admin, currency="GBP", rates={"EUR": "0.85"})
    assert str(refused.value) == (
        "1 cost is in USD, which the team could not count in GBP without a USD rate; "
        "enter it with the change."
    )
    with pytest.raises(ValidationError, match="^1 cost is in EUR and 1 in USD, .* without EUR"):
        money.set_team_currency(engine, actor=admin, currency="GBP")
    money.set_team_currency(
        engine, actor=admin, currency="GBP", rates={"EUR": "0.85", "usd": "0.75"}
    )
    team = money.team_money(engine)
    assert (team.currency, dict(team.rates)) == (
        "GBP",
        {"EUR": Decimal("0.85"), "USD": Decimal("0.75")},
    )
    # 100 × 0.85 + 100 × 0.75
    report = metrics.compute(engine, **JANUARY)
    assert report.total_cost == pytest.approx(160.0)
    assert [(u.currency, u.costs, u.covered) for u in money.currencies_in_use(engine)] == [
        ("EUR", 1, True),
        ("USD", 1, True),
    ]


# --- figures in the team currency ------------------------------------------------------------


def test_cost_per_hire_and_savings_in_the_team_currency(
    engine: Engine, users: dict[str, User]
) -> None:
    admin, recruiter = users["admin"], users["recruiter"]
    euro_team(engine, admin)
    agency_job = hire(engine, recruiter, "Sales lead", "agency", "2026-01-20T10:00:00")
    hire(engine, recruiter, "Backend engineer", "talent_pool", "2026-01-25T10:00:00")
    add(engine, recruiter, "1000", "agency fees", "EUR", job_id=agency_job)
    add(engine, recruiter, "500", "Job board", "USD", job_id=agency_job)  # 450 EUR
    add(engine, recruiter, "100", "Software", "USD")  # 90 EUR
    add(engine, recruiter, "60", "Sign-on bonus", "EUR")
    add(engine, recruiter, "999", "tools", "EUR", incurred_on=dt.date(2026, 2, 1))  # February
    report = metrics.compute(engine, **JANUARY)
    assert report.hires == 2
    assert report.total_cost == pytest.approx(1000 + 450 + 90 + 60)  # 1600 EUR
    assert report.cost_per_hire == pytest.approx(1600 / 2)  # 800 EUR
    saved = pool_yield.savings(engine, **JANUARY)
    # External: (1000 agency fees + 450 job ads) / 1 agency hire; CRM costs: 90 of tools.
    assert saved["external_cost_per_hire"] == pytest.approx(1450)
    assert saved["gross_savings"] == pytest.approx(1450)  # 1 pool hire
    assert saved["crm_costs"] == pytest.approx(90)
    assert saved["net_savings"] == pytest.approx(1360)
    assert money.figures_note(engine) == "In EUR; USD converted at 0.9."
    # By month too: January's 1600 EUR over 2 hires; February's costs with no hire.
    both = {"start": dt.date(2026, 1, 1), "end": dt.date(2026, 2, 28)}
    assert metrics.monthly(engine, metric="cost_per_hire", **both) == [
        (dt.date(2026, 1, 1), pytest.approx(800)),
        (dt.date(2026, 2, 1), None),
    ]


def test_a_cost_stored_before_the_rules_is_left_out_and_named(
    engine: Engine, users: dict[str, User]
) -> None:
    admin = users["admin"]
    euro_team(engine, admin)
    add(engine, users["recruiter"], "1000", "tools", "EUR")
    with db.write_session(engine) as session:  # as an older version could store it
        session.add(
            Cost(
                incurred_on=dt.date(2026, 1, 3),
                category="tools",
                amount=Decimal(700),
                currency="GBP",
            )
        )
    report = metrics.compute(engine, **JANUARY)
    assert report.total_cost == pytest.approx(1000)  # not 1700: GBP is not EUR
    assert money.figures_note(engine) == (
        "In EUR; USD converted at 0.9. 1 cost is in GBP with no rate to EUR, so cost figures "
        "leave it out; an admin can enter the rate in Settings → Money."
    )
    assert [(u.currency, u.costs, u.covered) for u in money.currencies_in_use(engine)] == [
        ("EUR", 1, True),
        ("GBP", 1, False),
    ]
    money.set_rate(engine, actor=admin, currency="GBP", rate="1.2")
    assert metrics.compute(engine, **JANUARY).total_cost == pytest.approx(1000 + 840)


# --- the demo ------------------------------------------------------------------------------


def test_the_demo_counts_in_pounds_and_pays_some_bills_in_euros_and_dollars(
    engine: Engine,
) -> None:
    demo.load_demo(engine, candidates=300, seed=7, today=dt.date(2026, 6, 30))
    team = money.team_money(engine)
    assert (team.currency, dict(team.rates)) == (
        "GBP",
        {"EUR": Decimal("0.85"), "USD": Decimal("0.79")},
    )
    uses = {use.currency: use for use in money.currencies_in_use(engine)}
    assert sorted(uses) == ["EUR", "GBP", "USD"] and all(u.covered for u in uses.values())
    with db.read_session(engine) as session:
        labels = set(
            session.execute(
                select(Cost.category, Cost.category_label).where(Cost.category_label.is_not(None))
            ).all()
        )
        tools = set(session.scalars(select(Cost.currency).where(Cost.category == "tools")))
    assert labels == {("other", "Sign-on bonus"), ("other", "Relocation")}
    assert tools == {"USD"}  # the US vendors' seats
    assert money.figures_note(engine) == "In GBP; EUR converted at 0.85, USD at 0.79."


def test_the_demo_keeps_a_team_currency_set_before(engine: Engine, users: dict[str, User]) -> None:
    money.set_team_currency(engine, actor=users["admin"], currency="EUR")
    demo.load_demo(engine, candidates=300, seed=7, today=dt.date(2026, 6, 30))
    assert money.team_money(engine) == money.TeamMoney("EUR", {})
    assert [(u.currency, u.covered) for u in money.currencies_in_use(engine)] == [("EUR", True)]


# --- beside the figures on the Goals page --------------------------------------------------


def test_goals_page_says_which_currency_its_cost_figures_are_in(
    engine: Engine, users: dict[str, User]
) -> None:
    from tests.test_app import app_as

    euro_team(engine, users["admin"])
    add(engine, users["recruiter"], "100", "tools", "USD", incurred_on=clock.today())
    at = app_as(users["manager"]).run()
    at.switch_page("app_pages/goals.py").run()
    assert not at.exception, at.exception
    for section, prefix in (("Metrics", "Cost per hire"), ("Savings", "Costs")):
        at.session_state["goals_section"] = section
        at.run()
        assert not at.exception, at.exception
        assert f"{prefix}: In EUR; USD converted at 0.9." in [c.value for c in at.caption]
