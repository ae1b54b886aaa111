"""What costs are worth in the team's currency, and which category each cost is filed under.

Rules:
- A cost is filed under one of models.COST_CATEGORIES. A known name or synonym ("job
  board", "headhunter", "assessment tools") files it under its category with no label;
  any other text files it under "other" and keeps that text as its label ("Sign-on
  bonus"), so no exported cost is refused for its category.
- The team counts money in one currency (a Setting; USD when unset, which is what costs
  before this setting were recorded in). An admin enters a rate for each other currency
  the team pays in: 1 unit of that currency = rate units of the team currency.
- Every stored cost is convertible: a cost in a currency that is neither the team's nor
  has a rate is refused, and an admin cannot change the currency or remove a rate so
  that stored costs would lose their conversion. A cost that is not convertible anyway
  (stored before these rules) is left out of the figures and named by figures_note().
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from sqlalchemy import Engine, Numeric, case, func, literal, null, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from crm import audit
from crm.db import read_session, write_session
from crm.errors import ValidationError
from crm.models import COST_CATEGORIES, Cost, Setting, User
from crm.permissions import require_admin

MONEY_KEY = "money"
DEFAULT_CURRENCY = "USD"
LABEL_LIMIT = 80  # models.Cost.category_label
MAX_RATE = Decimal(1_000_000)
RATE_PLACES = 10  # 1 VND is about 0.00004 USD
WHERE_TO_FIX = "an admin can enter one in Settings → Money"

COST_LABELS = {
    "job_ads": "Job ads",
    "agency_fees": "Agency fees",
    "tools": "Tools",
    "recruiter_time": "Recruiter time",
    "events": "Events",
    "other": "Other",
}
# What ATS exports and people call the categories, compared lower-cased with dashes and
# underscores as spaces (_key). Anything not here is kept as a label under "other".
COST_ALIASES = {
    "job ads": "job_ads",
    "job ad": "job_ads",
    "job advertising": "job_ads",
    "advertising": "job_ads",
    "ads": "job_ads",
    "job boards": "job_ads",
    "job board": "job_ads",
    "job postings": "job_ads",
    "job posting": "job_ads",
    "sponsored jobs": "job_ads",
    "agency fees": "agency_fees",
    "agency fee": "agency_fees",
    "agency": "agency_fees",
    "agencies": "agency_fees",
    "recruitment agency": "agency_fees",
    "recruiting agency": "agency_fees",
    "headhunter": "agency_fees",
    "headhunters": "agency_fees",
    "search fee": "agency_fees",
    "placement fee": "agency_fees",
    "tools": "tools",
    "tool": "tools",
    "software": "tools",
    "subscription": "tools",
    "subscriptions": "tools",
    "saas": "tools",
    "license": "tools",
    "licence": "tools",
    "licenses": "tools",
    "licences": "tools",
    "ats": "tools",
    "crm": "tools",
    "assessment tools": "tools",
    "assessment tool": "tools",
    "recruiter time": "recruiter_time",
    "recruiting time": "recruiter_time",
    "recruiter hours": "recruiter_time",
    "recruiter": "recruiter_time",
    "internal time": "recruiter_time",
    "salaries": "recruiter_time",
    "salary": "recruiter_time",
    "staff": "recruiter_time",
    "events": "events",
    "event": "events",
    "career fair": "events",
    "careers fair": "events",
    "job fair": "events",
    "meetup": "events",
    "meetups": "events",
    "conference": "events",
    "sponsorship": "events",
    "other": "other",
    "misc": "other",
    "miscellaneous": "other",
}


@dataclass(frozen=True)
class TeamMoney:
    """The team's currency and its rates (1 unit of a currency = rate units of the team's)."""

    currency: str = DEFAULT_CURRENCY
    rates: Mapping[str, Decimal] = field(default_factory=dict)

    def counts(self, currency: str) -> bool:
        """Whether a cost in `currency` can be counted in the team currency."""
        return currency == self.currency or currency in self.rates

    def convert(self, amount: Decimal, currency: str) -> Decimal:
        """The amount in the team currency (exact; round for display only)."""
        if currency == self.currency:
            return amount
        if currency not in self.rates:
            raise ValidationError(unconvertible(self, currency, "This amount"))
        return amount * self.rates[currency]


@dataclass(frozen=True)
class CurrencyUse:
    """A currency stored costs are in, how many, and whether the team can count them."""

    currency: str
    costs: int
    covered: bool


# --- categories ---------------------------------------------------------------------------


def _key(text: str) -> str:
    return " ".join(text.replace("_", " ").replace("-", " ").lower().split())


def file_category(text: str | None) -> tuple[str, str | None]:
    """(category, label or None) for a category as someone wrote it; never refuses.

    "Headhunter" -> ("agency_fees", None); "Sign-on bonus" -> ("other", "Sign-on bonus");
    blank -> ("other", None). A label is trimmed, its whitespace collapsed, and cut to 80
    characters (the column's size).
    """
    if text is None:
        return "other", None
    key = _key(str(text))
    if not key:
        return "other", None
    known = COST_ALIASES.get(key) or key.replace(" ", "_")
    if known in COST_CATEGORIES:
        return known, None
    label = " ".join(str(text).split())
    if len(label) > LABEL_LIMIT:
        label = label[: LABEL_LIMIT - 1].rstrip() + "…"
    return "other", label


def category_text(category: str, label: str | None) -> str:
    """How a cost's category reads on pages and in exports: "Tools", "Other: Sign-on bonus"."""
    name = COST_LABELS.get(category, category)
    return f"{name}: {label}" if label else name


# --- currency and rates -------------------------------------------------------------------


def currency_code(text: str | None) -> str:
    """An upper-case three-letter code, or one sentence saying what a currency looks like."""
    code = (text or "").strip().upper()
    if not (len(code) == 3 and code.isascii() and code.isalpha()):
        raise ValidationError("The currency is a three-letter code such as USD.")
    return code


def _rate(currency: str, team_currency: str, rate: Decimal | str | float | int) -> Decimal:
    if currency == team_currency:
        raise ValidationError(f"{currency} is the team currency; it needs no rate.")
    example = f"such as 0.92 (1 {currency} = 0.92 {team_currency})"
    try:
        value = Decimal(str(rate).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError(
            f"The {currency} rate must be a positive number, {example}."
        ) from None
    if not value.is_finite() or value <= 0 or value > MAX_RATE:
        raise ValidationError(f"The {currency} rate must be a positive number, {example}.")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -RATE_PLACES:
        raise ValidationError(f"The {currency} rate may have at most {RATE_PLACES} decimals.")
    return value


def rate_text(rate: Decimal) -> str:
    """A rate as entered, without trailing zeros: '0.92', '100'."""
    return format(rate.normalize(), "f")


def parse_rates(text: str) -> dict[str, str]:
    """{code: rate text} from lines such as "USD 0.92" or "GBP = 1.17" (blank lines skipped).

    The rates themselves are checked where they are saved (set_team_currency).
    """
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.replace("=", " ").replace(":", " ").split()
        if not words:
            continue
        if len(words) != 2:
            raise ValidationError(
                f"Line {number} of the rates: write a currency and its rate, such as USD 0.92."
            )
        code = currency_code(words[0])
        if code in found:
            raise ValidationError(f"The rates give {code} twice.")
        found[code] = words[1]
    return found


def team_money_in(session: Session, *, lock: Literal["share", "update"] | None = None) -> TeamMoney:
    """The team's currency and rates, read inside the caller's session.

    On PostgreSQL a cost being added holds the row shared and an admin's change holds it
    for update, so a rate cannot be removed while a cost that needs it is being written
    (SQLite's write transactions run one at a time anyway).
    """
    query = select(Setting).where(Setting.key == MONEY_KEY)
    if lock is not None:
        query = query.with_for_update(read=lock == "share")
    setting = session.scalars(query).first()
    if setting is None or not setting.value:
        return TeamMoney()
    value = setting.value
    rates = {str(code): Decimal(str(rate)) for code, rate in (value.get("rates") or {}).items()}
    return TeamMoney(currency=str(value.get("currency") or DEFAULT_CURRENCY), rates=rates)


def team_money(engine: Engine) -> TeamMoney:
    with read_session(engine) as session:
        return team_money_in(session)


def unconvertible(team: TeamMoney, currency: str, subject: str = "This cost") -> str:
    """The sentence for an amount the team cannot count."""
    return (
        f"{subject} is in {currency} but the team counts in {team.currency} and has no "
        f"{currency} rate; {WHERE_TO_FIX}."
    )


def require_convertible(session: Session, currency: str | None) -> str:
    """The currency to store a cost in (the team's when None); refused if the team could
    not count it. Holds the team's money row until the caller's transaction ends."""
    team = team_money_in(session, lock="share")
    code = team.currency if currency is None else currency
    if not team.counts(code):
        raise ValidationError(unconvertible(team, code))
    return code


def _cost_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Cost.currency, func.count()).group_by(Cost.currency))
    return {currency: count for currency, count in rows}


def _costs_phrase(stranded: dict[str, int]) -> str:
    """'1 cost is in USD' / '3 costs are in GBP and 1 in USD'."""
    (code, count), *rest = sorted(stranded.items())
    parts = [f"{count:,} cost{'' if count == 1 else 's'} {'is' if count == 1 else 'are'} in {code}"]
    parts += [f"{other_count:,} in {other}" for other, other_count in rest]
    return parts[0] if not rest else ", ".join(parts[:-1]) + " and " + parts[-1]


def _refuse_stranded(session: Session, team: TeamMoney, what: str) -> None:
    """Refuse a change after which stored costs could not be counted in the team currency."""
    stranded = {
        code: count for code, count in _cost_counts(session).items() if not team.counts(code)
    }
    if stranded:
        codes = sorted(stranded)
        needed = f"a {codes[0]} rate" if len(codes) == 1 else f"{' and '.join(codes)} rates"
        raise ValidationError(
            f"{_costs_phrase(stranded)}, which the team could not count in {team.currency} "
            f"without {needed}{what.format(it='it' if len(codes) == 1 else 'them')}."
        )


def _rates_text(rates: Mapping[str, Decimal]) -> dict[str, str]:
    return {code: rate_text(rate) for code, rate in sorted(rates.items())}


def _save(
    session: Session, actor: User, team: TeamMoney, action: str, detail: dict[str, Any]
) -> TeamMoney:
    """Store the team's money with the audit entry of the change; returns the team."""
    value = {"currency": team.currency, "rates": _rates_text(team.rates)}
    setting = session.get(Setting, MONEY_KEY)
    if setting is None:
        session.add(Setting(key=MONEY_KEY, value=value))
    else:
        setting.value = value
    audit.record(session, actor=actor, action=action, detail=detail)
    return team


def set_team_currency(
    engine: Engine,
    *,
    actor: User,
    currency: str,
    rates: Mapping[str, Decimal | str | float | int] | None = None,
) -> TeamMoney:
    """Count the team's money in `currency` (admins).

    The old rates were to the old currency, so they do not carry over: `rates` are the new
    ones (to the new currency). Refused when stored costs would be left without a rate.
    Given the currency the team already counts in, the rates replace the current ones.
    """
    require_admin(engine, actor)
    code = currency_code(currency)
    new_rates = {}
    for other, rate in (rates or {}).items():
        other_code = currency_code(other)
        new_rates[other_code] = _rate(other_code, code, rate)
    with write_session(engine, actor=actor, need="admin") as session:
        old = team_money_in(session, lock="update")
        if code == old.currency and rates is None:
            return old
        team = TeamMoney(currency=code, rates=new_rates)
        _refuse_stranded(session, team, "; enter {it} with the change")
        detail = {"from": old.currency, "currency": code, "rates": _rates_text(new_rates)}
        return _save(session, actor, team, "settings.currency", detail)


def set_rate(
    engine: Engine, *, actor: User, currency: str, rate: Decimal | str | float | int
) -> TeamMoney:
    """Enter or change the rate of one currency (admins): 1 `currency` = rate team units."""
    require_admin(engine, actor)
    code = currency_code(currency)
    with write_session(engine, actor=actor, need="admin") as session:
        old = team_money_in(session, lock="update")
        value = _rate(code, old.currency, rate)
        team = TeamMoney(currency=old.currency, rates={**old.rates, code: value})
        previous = old.rates.get(code)
        detail = {
            "currency": code,
            "rate": rate_text(value),
            "previous": None if previous is None else rate_text(previous),
            "team_currency": old.currency,
        }
        return _save(session, actor, team, "settings.rate", detail)


def remove_rate(engine: Engine, *, actor: User, currency: str) -> TeamMoney:
    """Remove a currency's rate (admins); refused while costs are stored in that currency."""
    require_admin(engine, actor)
    code = currency_code(currency)
    with write_session(engine, actor=actor, need="admin") as session:
        old = team_money_in(session, lock="update")
        if code not in old.rates:
            raise ValidationError(f"There is no {code} rate to remove.")
        team = TeamMoney(
            currency=old.currency, rates={c: r for c, r in old.rates.items() if c != code}
        )
        _refuse_stranded(session, team, ", so the rate stays")
        detail = {"currency": code, "rate": rate_text(old.rates[code])}
        return _save(session, actor, team, "settings.rate_remove", detail)


def currencies_in_use(engine: Engine) -> list[CurrencyUse]:
    """The currencies stored costs are in, with how many and whether each is counted."""
    with read_session(engine) as session:
        team = team_money_in(session)
        counts = _cost_counts(session)
    return [
        CurrencyUse(currency=code, costs=count, covered=team.counts(code))
        for code, count in sorted(counts.items())
    ]


# --- figures -------------------------------------------------------------------------------

# Wide enough for MAX_RATE with RATE_PLACES decimals.
_RATE_TYPE = Numeric(18, RATE_PLACES)


def team_value(team: TeamMoney) -> ColumnElement[Any]:
    """SQL for a cost's amount in the team currency.

    NULL (so left out of a SUM) for a currency the team has no rate for: such a cost can
    only predate the rules, and figures_note() says it is left out rather than adding it
    as if it were in the team currency.
    """
    whens: list[tuple[Any, Any]] = [(Cost.currency == team.currency, Cost.amount)]
    for code, rate in sorted(team.rates.items()):
        whens.append((Cost.currency == code, Cost.amount * literal(rate, _RATE_TYPE)))
    return case(*whens, else_=null())


def rates_note(team: TeamMoney) -> str | None:
    """'In EUR; GBP converted at 1.17, USD at 0.92.'; None when the team has no rates."""
    if not team.rates:
        return None
    pairs = sorted(team.rates.items())
    first_code, first_rate = pairs[0]
    parts = [f"{first_code} converted at {rate_text(first_rate)}"]
    parts += [f"{code} at {rate_text(rate)}" for code, rate in pairs[1:]]
    return f"In {team.currency}; {', '.join(parts)}."


def figures_note(engine: Engine) -> str | None:
    """The sentence to show beside cost figures: the rates used, and any costs left out."""
    with read_session(engine) as session:
        team = team_money_in(session)
        counts = _cost_counts(session)
    sentences = [rates_note(team) or ""]
    left_out = {code: count for code, count in counts.items() if not team.counts(code)}
    if left_out:
        sentences.append(
            f"{_costs_phrase(left_out)} with no rate to {team.currency}, so cost figures "
            f"leave {'it' if sum(left_out.values()) == 1 else 'them'} out; an admin can enter "
            "the rate in Settings → Money."
        )
    note = " ".join(sentence for sentence in sentences if sentence)
    return note or None
