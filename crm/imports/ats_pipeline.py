"""An ATS row's dates and stage as an application's pipeline, by crm.jobs' rules.

An application row says everything about the application: its stages are set from
scratch from the row's dates, final stage and offer (apply_stages), or the row is refused
with the field at fault (RowError).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from crm import jobs as job_rules
from crm.errors import ValidationError
from crm.imports.ats_tables import NO, STAGE_ALIASES, YES
from crm.models import APPLICATION_STAGES, Application


class RowError(Exception):
    """A refused row: the field at fault and one sentence."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field_name
        self.problem = problem


def value_key(text: str) -> str:
    """A cell's words for comparison ('Phone-Screen' -> 'phone screen')."""
    return " ".join(text.replace("_", " ").replace("-", " ").lower().split())


def apply_stages(
    session: Session,
    application: Application,
    stamps: dict[str, dt.datetime | None],
    final: str | None,
    accepted: bool | None,
    decided: dt.datetime | None,
    previous: dict[str, dt.datetime | None],
    now: dt.datetime,
) -> None:
    """Set the stages from the row's dates by crm.jobs' rules, from scratch."""
    pipeline = job_rules.PIPELINE_STAGES
    dated = [stage for stage in pipeline if stamps[stage] is not None]
    outcomes = [stage for stage in job_rules.OUTCOME_STAGES if stamps[stage] is not None]
    if accepted is False and final in (None, "offer"):
        final = "withdrew"
    if final is None:
        if outcomes:
            final = max(outcomes, key=lambda stage: stamps[stage])  # type: ignore[arg-type,return-value]
        elif dated:
            final = dated[-1]
        else:
            final = "applied"
    if final in pipeline:
        position = pipeline.index(final)
        later = [stage for stage in dated if pipeline.index(stage) > position]
        if later:
            raise RowError(
                later[0],
                f"The stage is {job_rules.STAGE_LABELS[final]} but the row has a "
                f"{job_rules.STAGE_LABELS[later[0]].lower()} date.",
            )
        if outcomes:
            raise RowError(
                outcomes[0],
                f"The stage is {job_rules.STAGE_LABELS[final]} but the row has a "
                f"{job_rules.STAGE_LABELS[outcomes[0]].lower()} date.",
            )
        if accepted is False and final == "hired":
            raise RowError("offer_accepted", "The offer was declined but the row has a hire.")
    known = [moment for moment in stamps.values() if moment is not None]
    fallback = max(known) if known else None

    def at(stage: str) -> dt.datetime:
        moment = stamps.get(stage) or previous.get(stage) or fallback
        if moment is None:
            moment = now
        return moment

    if final == "hired" and stamps["hired"] is None and previous.get("hired") is None:
        raise RowError("stage", "The person was hired but the hired date is blank.")
    # From scratch: the row says everything about the application.
    for stage in APPLICATION_STAGES:
        setattr(application, f"{stage}_at", None)
    application.offer_accepted = None
    application.offer_decided_at = None
    application.stage = "applied"
    steps = list(dated)
    if final in pipeline and final not in steps:
        steps.append(final)
    if accepted is not None and "offer" not in steps and final != "hired":
        steps.append("offer")
    steps.sort(key=pipeline.index)
    if not steps:
        steps = ["applied"] if final != "sourced" else ["sourced"]
    for stage in steps:
        moment = at(stage)
        if stage == "offer" and stamps["offer"] is None and decided is not None:
            moment = min(moment, decided)
        try:
            job_rules._apply_stage(session, application, stage, moment)
        except ValidationError as error:
            raise RowError(stage if stamps[stage] else "stage", str(error)) from None
    offer_at = application.offer_at
    if accepted is True:
        moment = decided or (stamps["hired"] if final == "hired" else None) or offer_at
        if offer_at is not None and moment is not None and moment < offer_at:
            raise RowError("offer_decided", "The offer was decided before it was made.")
        application.offer_accepted = True
        application.offer_decided_at = moment
    if final in job_rules.OUTCOME_STAGES:
        moment = stamps[final] or (decided if final == "withdrew" else None) or at(final)
        if accepted is False and offer_at is not None and moment < offer_at:
            raise RowError("offer_decided", "The offer was declined before it was made.")
        job_rules._apply_stage(session, application, final, moment)
        if accepted is False:
            application.offer_accepted = False
            application.offer_decided_at = decided or moment


def yes_no(text: str) -> bool | None:
    key = value_key(text)
    if key in YES:
        return True
    if key in NO:
        return False
    return None


def stage_of(text: str) -> str | None:
    key = value_key(text)
    if key in STAGE_ALIASES:
        return STAGE_ALIASES[key]
    if key.replace(" ", "_") in APPLICATION_STAGES:
        return key.replace(" ", "_")
    for word, stage in (
        ("withdr", "withdrew"),
        ("reject", "rejected"),
        ("hired", "hired"),
        ("offer", "offer"),
        ("interview", "interview"),
        ("screen", "screen"),
    ):
        if word in key:
            return stage
    return None


def snapshot(application: Application) -> tuple[Any, ...]:
    return (
        application.external_id,
        application.source,
        application.source_detail,
        application.pool_id,
        application.campaign_id,
        application.stage,
        application.offer_accepted,
        application.offer_decided_at,
        *(getattr(application, f"{stage}_at") for stage in APPLICATION_STAGES),
    )
