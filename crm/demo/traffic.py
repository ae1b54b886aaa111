"""The demo's campaign traffic: who was enrolled, what was sent, and what people did with it.

The demo writes tens of thousands of these rows in bulk, so it does not call the per-row
services (campaign_lifecycle.launch, outbox.deliver_due, engagement.record_hits,
unsubscribe, record_reply): that would make `crm demo` many times slower. It builds every
row with the pure functions those services use instead (the outbox rows of an enrollment,
what a stop writes, what a failed delivery keeps, the event row, how a hit is classified),
so its enrollments, messages, events and suppressions are ones the product could write.
People's contact dates are left as people.py drew them (a send would move them, and the
"gone quiet" pool is defined by them), and replies marked by hand leave no audit entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, null
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from crm import merge_tags
from crm.demo.campaigns import Recipient, audience
from crm.demo.world import World, insert_rows, max_id, reset_sequence
from crm.engagement import (
    APPLE_PRIVACY_AGENT,
    MOVE_ENGAGED,
    SentMessage,
    classify_hit,
    event_row,
    reply_detail,
    suppression_row,
)
from crm.enrollments import (
    HARD_BOUNCE,
    REPLIED,
    STOPPABLE_STATES,
    UNSUBSCRIBED,
    cancelled,
    sequence_rows,
    stopped,
    stops_on,
)
from crm.models import CampaignStep, Candidate, Enrollment, Event, OutboxMessage, Suppression
from crm.outbox import bounce_detail, failed_delivery

# What real mail programs, browsers and machines send as their user agent. The demo only
# makes up who reads what and when; crm.engagement.classify_hit then decides, as tracking
# does, what each open or click was (see _engagement).
GMAIL_PROXY_AGENT = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
# (mail program's agent when it loads images, browser's agent when a link is followed)
HUMAN_AGENTS = (
    (GMAIL_PROXY_AGENT, CHROME_WINDOWS),  # Gmail on the web: images through Google's proxy
    (GMAIL_PROXY_AGENT, SAFARI_IPHONE),  # the Gmail app proxies images too
    (  # Apple Mail on a Mac, Mail Privacy Protection off
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        SAFARI_MAC,
    ),
    (  # Mail on an iPhone, Mail Privacy Protection off
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148",
        SAFARI_IPHONE,
    ),
)
# Link checkers at mail gateways: library defaults, or no user agent at all.
MACHINE_AGENTS = ("Go-http-client/1.1", "python-requests/2.31.0", None)
# The subject lines of replies as mail programs write them; one is drawn for every reply.
REPLY_SUBJECTS = ("Re: {subject}", "RE: {subject}", "Re: Re: {subject}", "AW: {subject}")
UNKNOWN_USER = "550 5.1.1 User unknown"
SENT_REPLY = "250 2.0.0 OK: queued"
JOBS_URL = "https://careers.example.com/jobs"
# What an outbox row holds before its message goes out (columns sequence_rows leaves out).
_UNSENT = {
    "subject": None,
    "skip_reason": None,
    "attempts": 0,
    "lease_until": None,
    "leased_by": None,
    "message_id": None,
    "smtp_reply": None,
    "last_error": None,
    "sent_at": None,
}


class _Traffic:
    """Rows of all three campaigns, built in memory and written in one go."""

    def __init__(self, world: World, session: Session) -> None:
        self.world = world
        self.rng = world.rng
        self.next_enrollment = max_id(session, Enrollment.__table__) + 1
        self.next_message = max_id(session, OutboxMessage.__table__) + 1
        self.enrollments: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.suppressions: list[dict[str, Any]] = []
        self.engaged: dict[int, dt.datetime] = {}
        self.unsubscribed: dict[int, dt.datetime] = {}
        self.suppressed: set[int] = set()  # unsubscribed or bounced: no later launch enrolls them
        allowed = merge_tags.available_fields()
        self.subjects = {
            step.id: merge_tags.parse(step.subject, allowed=allowed)
            for steps in world.steps.values()
            for step in steps
        }

    def sequence(self, key: str, index: int, person: Recipient) -> None:
        """One person's enrollment: each step sent in turn until one is still due, or
        something stops the sequence (a hard bounce, a reply, an unsubscribe)."""
        rng, now = self.rng, self.world.now
        campaign, steps = self.world.campaigns[key], self.world.steps[key]
        assert campaign.launched_at is not None
        enrolled_at = campaign.launched_at - dt.timedelta(minutes=30)
        due = campaign.launched_at + dt.timedelta(days=index % 3, minutes=index // 3 * 2)
        enrollment_id = self.next_enrollment
        self.next_enrollment += 1
        rows = sequence_rows(
            campaign_id=campaign.id,
            enrollment_id=enrollment_id,
            candidate_id=person.id,
            to_address=person.email,
            steps=steps,
            now=enrolled_at,
            first_due=due,
        )
        for offset, row in enumerate(rows):
            row.update(_UNSENT, id=self.next_message + offset)
        self.next_message += len(rows)
        self.messages += rows
        reason = None
        for position, (step, row) in enumerate(zip(steps, rows, strict=True)):
            if position:  # queued once the step before is sent (crm.enrollments.schedule_next)
                due = due + dt.timedelta(days=step.delay_days, minutes=rng.randint(0, 90))
                row.update(status="queued", due_at=due)
            if due >= now:
                break
            row["attempts"] = 1
            row["subject"] = self.subjects[step.id].render({"first_name": person.first_name})
            if position == 0 and rng.random() < 0.02:
                reason = self.bounce(row, person, due + dt.timedelta(seconds=40))
                break
            sent = due + dt.timedelta(seconds=rng.randint(2, 50))
            row.update(
                status="sent",
                sent_at=sent,
                message_id=f"<demo-{campaign.id}-{step.id}-{person.id}@crm.example>",
                smtp_reply=SENT_REPLY,
            )
            following = steps[position + 1] if position + 1 < len(steps) else None
            reason = self.engagement(row, person, sent, following)
            if reason:
                break
        finished = all(row["status"] == "sent" for row in rows)
        enrollment = {
            "id": enrollment_id,
            "campaign_id": campaign.id,
            "candidate_id": person.id,
            "status": "completed" if finished else "active",
            "enrolled_at": enrolled_at,
            "stopped_reason": None,
        }
        if reason:  # as crm.enrollments.stop_enrollment ends a sequence
            enrollment.update(stopped(reason))
            for row in rows:
                if row["status"] in STOPPABLE_STATES:
                    row.update(cancelled(reason))
        self.enrollments.append(enrollment)

    def event(self, kind: str, at: dt.datetime, row: dict[str, Any], **fields: Any) -> None:
        message = SentMessage(
            row["id"],
            row["campaign_id"],
            row["step_id"],
            row["enrollment_id"],
            row["candidate_id"],
            row["sent_at"],
        )
        event = event_row(kind, at=at.replace(microsecond=0), message=message, **fields)
        if event["detail"] is None:
            event["detail"] = null()  # not None: a bulk insert would store the JSON value null
        self.events.append(event)

    def suppress(self, person: Recipient, reason: str, note: str, at: dt.datetime) -> None:
        self.suppressed.add(person.id)
        if person.email_normalized:
            row = suppression_row(person.email_normalized, reason, note)
            self.suppressions.append({**row, "created_at": at})

    def bounce(self, row: dict[str, Any], person: Recipient, at: dt.datetime) -> str:
        """A hard bounce at delivery, as crm.outbox records it: the message failed, the
        address suppressed, the sequence ended."""
        row.update(failed_delivery(UNKNOWN_USER))
        self.event("bounce", at, row, detail=bounce_detail(UNKNOWN_USER))
        self.suppress(person, "hard_bounce", UNKNOWN_USER, at)
        return HARD_BOUNCE

    def hit(self, kind: str, at: dt.datetime, row: dict[str, Any], agent: str | None) -> None:
        """An open or click as tracking records it: the real classifier, given the same
        agent and time after delivery, decides what it was and whether it engages."""
        at = at.replace(microsecond=0)  # as stored: the event must classify the same
        if at >= self.world.now:
            return
        machine, seen_via = classify_hit(
            user_agent=agent,
            seconds_after_delivery=(at - row["sent_at"]).total_seconds(),
            is_click=kind == "click",
        )
        self.event(kind, at, row, machine=machine, seen_via=seen_via, user_agent=agent)
        if not machine:
            self.engage(row["candidate_id"], at)

    def engage(self, cid: int, at: dt.datetime) -> None:
        self.engaged[cid] = max(self.engaged.get(cid, at), at)

    def engagement(
        self,
        row: dict[str, Any],
        person: Recipient,
        sent: dt.datetime,
        following: CampaignStep | None,
    ) -> str | None:
        """Opens, clicks, replies and unsubscribes for one sent message; why the sequence
        stops, if it does."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.2:
            # Apple Mail with Mail Privacy Protection on: Apple's relay fetches the images
            # when the device syncs, read or not; some of these people read and click.
            fetched = sent + dt.timedelta(seconds=rng.randint(60, 4 * 3600))
            self.hit("open", fetched, row, APPLE_PRIVACY_AGENT)
            if rng.random() < 0.15:
                clicked = fetched + dt.timedelta(hours=rng.expovariate(1 / 10))
                self.hit("click", clicked, row, SAFARI_IPHONE)
        elif roll < 0.25:
            # A gateway's link checker, seconds after delivery: the pixel, and often the link.
            agent = rng.choice(MACHINE_AGENTS)
            scanned = sent + dt.timedelta(seconds=rng.uniform(1, 8))
            self.hit("open", scanned, row, agent)
            if rng.random() < 0.5:
                self.hit("click", scanned + dt.timedelta(seconds=rng.uniform(0.2, 1)), row, agent)
        elif roll < 0.6:
            mail_agent, browser_agent = rng.choice(HUMAN_AGENTS)
            opened = sent + dt.timedelta(hours=rng.expovariate(1 / 10))
            self.hit("open", opened, row, mail_agent)
            if rng.random() < 0.33:
                clicked = opened + dt.timedelta(seconds=rng.randint(5, 300))
                self.hit("click", clicked, row, browser_agent)
        roll = rng.random()
        if roll < 0.06:
            return self.reply(row, sent + dt.timedelta(hours=rng.uniform(1, 72)), following)
        if roll < 0.07:
            return self.unsubscribe(row, person, sent + dt.timedelta(hours=rng.uniform(0.2, 48)))
        return None

    def reply(
        self, row: dict[str, Any], at: dt.datetime, following: CampaignStep | None
    ) -> str | None:
        """A reply, as crm.engagement.record_reply records it: read from the mailbox, or
        (half of them) marked "interested" by hand; it ends the sequence when the next step
        says so. None also when the reply lies in the future."""
        if at >= self.world.now:
            return None
        subject = self.rng.choice(REPLY_SUBJECTS).format(subject=row["subject"])
        if self.rng.random() < 0.5:
            detail = reply_detail(source="marked by hand", answer="interested")
            self.event("reply", at, row, detail=detail)
            self.event("interested", at, row, detail=detail)
        else:
            detail = reply_detail(source="mailbox", detail={"subject": subject})
            self.event("reply", at, row, detail=detail)
        self.engage(row["candidate_id"], at.replace(microsecond=0))
        return REPLIED if stops_on(following, "stop_on_reply") else None

    def unsubscribe(self, row: dict[str, Any], person: Recipient, at: dt.datetime) -> str | None:
        """An unsubscribe, as crm.engagement.unsubscribe records it: the person and the
        address opted out of everything. None when it lies in the future."""
        if at >= self.world.now:
            return None
        how = "one-click" if person.id % 2 else "page"  # no random draw: the rest stays the same
        self.event("unsubscribe", at, row, detail={"how": how})
        self.unsubscribed[person.id] = at
        self.suppress(person, "unsubscribe", f"unsubscribed ({how})", at)
        return UNSUBSCRIBED

    def write(self, session: Session) -> None:
        insert_rows(session, Enrollment.__table__, self.enrollments)
        insert_rows(session, OutboxMessage.__table__, self.messages)
        insert_rows(session, Event.__table__, self.events)
        insert_rows(session, Suppression.__table__, self.suppressions)
        reset_sequence(session, Enrollment.__table__)
        reset_sequence(session, OutboxMessage.__table__)
        if self.engaged:
            session.execute(
                MOVE_ENGAGED,
                [{"p_id": cid, "p_at": at} for cid, at in sorted(self.engaged.items())],
            )
        if self.unsubscribed:
            candidates = Candidate.__table__
            session.execute(
                sql_update(candidates)
                .where(candidates.c.id == bindparam("cid"))
                .values(unsubscribed_at=bindparam("at")),
                [{"cid": cid, "at": at} for cid, at in sorted(self.unsubscribed.items())],
            )


def create_campaign_traffic(world: World, session: Session) -> None:
    """Every campaign's enrollments, messages and events, oldest campaign first, so an
    unsubscribe or a bounce keeps the person out of the later ones (as launch would)."""
    traffic = _Traffic(world, session)
    for key in ("backend", "sales", "data"):
        for index, person in enumerate(audience(world, session, world.campaigns[key])):
            if person.id not in traffic.suppressed:
                traffic.sequence(key, index, person)
    traffic.write(session)
    world.counts["messages"] = len(traffic.messages)
    world.counts["events"] = len(traffic.events)
