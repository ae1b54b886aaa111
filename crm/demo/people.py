"""The demo's people: candidates with their skills, tags, contact history and timeline.

Written with Core bulk inserts in chunks, with explicit ids (100,000 candidates load in
well under a minute on SQLite). A phone number goes to one person only, so "same phone"
duplicates in the demo are real suspects, not noise.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from crm.db import write_session
from crm.demo.vocabulary import (
    CHANNEL_KIND,
    CHANNEL_NOTES,
    COMPANIES,
    CONSENT_SOURCES,
    EMAIL_DOMAINS,
    FAMILIES,
    FIRST_NAMES,
    FOLLOW_UP_NOTES,
    LAST_NAMES,
    LOCATIONS,
    NOTE_KINDS,
    NOTES,
    PHONE_FORMATS,
    SOURCES,
    Family,
    email_part,
    slug,
    title,
)
from crm.demo.world import CHUNK, World, cumulative, insert_rows, max_id, reset_sequence
from crm.models import Activity, Candidate, CandidateTag


def create_candidates(world: World) -> None:
    """world.count candidates, in chunks, reporting progress from 5% to 85%."""
    maker = _CandidateMaker(world)
    with write_session(world.engine) as session:
        next_id = max_id(session, Candidate.__table__) + 1
    done = 0
    step = max(1, min(CHUNK, -(-world.count // 20)))  # about every 5%
    while done < world.count:
        size = min(step, world.count - done)
        rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, Any]] = []
        activities: list[dict[str, Any]] = []
        for offset in range(size):
            maker.candidate(next_id + done + offset, rows, tag_rows, activities)
        with write_session(world.engine) as session:
            insert_rows(session, Candidate.__table__, rows)
            insert_rows(session, CandidateTag.__table__, tag_rows)
            insert_rows(session, Activity.__table__, activities)
            reset_sequence(session, Candidate.__table__)
        done += size
        world.report("Creating candidates", 0.05 + 0.8 * done / world.count)


class _CandidateMaker:
    """Makes one candidate row at a time, with the weights and numbers used so far."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.owners = [world.users[name] for name in ("recruiter", "jordan", "li", "admin")]
        self.owner_weights = cumulative((4, 3, 3, 1))
        self.recruiters = [world.users[name] for name in ("recruiter", "jordan", "li")]
        self.phones_used: set[str] = set()
        self.family_weights = cumulative(f.weight for f in FAMILIES)
        self.location_weights = cumulative(weight for *_, weight in LOCATIONS)
        self.source_weights = cumulative(weight for _, weight in SOURCES)
        self.skill_tables = {
            f.name: ([s for s, _ in f.skills], cumulative(w for _, w in f.skills)) for f in FAMILIES
        }
        self.tags = (
            "silver medalist",
            "referral",
            "alumni",
            f"conference {world.today.year}",
            "open to relocation",
            "hiring manager favourite",
        )

    def owner(self) -> int:
        return self.world.rng.choices(self.owners, cum_weights=self.owner_weights)[0]

    def candidate(
        self,
        cid: int,
        rows: list[dict[str, Any]],
        tag_rows: list[dict[str, Any]],
        activities: list[dict[str, Any]],
    ) -> None:
        """One person's row, their tags and (for most) their timeline, added to the lists."""
        rng = self.world.rng
        random_ = rng.random
        family = rng.choices(FAMILIES, cum_weights=self.family_weights)[0]
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        years = min(25, max(0, round(rng.lognormvariate(1.8, 0.55))))
        location, country, _ = rng.choices(LOCATIONS, cum_weights=self.location_weights)[0]
        remote = location == "Remote" or random_() < 0.17
        created = self.world.days_ago(rng.uniform(2, 1000))

        email = email_normalized = None
        if random_() < 0.96:
            domain = rng.choice(EMAIL_DOMAINS)
            email = f"{email_part(first)}.{email_part(last)}{cid}@{domain}"
            email_normalized = email.lower()
        linkedin_url = linkedin_normalized = None
        if email is None or random_() < 0.85:
            handle = f"{slug(first)}-{slug(last)}-{cid}"
            linkedin_url = f"https://www.linkedin.com/in/{handle}"
            linkedin_normalized = f"linkedin.com/in/{handle}"
        phone = phone_normalized = None
        if random_() < 0.4 and country in PHONE_FORMATS:
            prefix, digits = PHONE_FORMATS[country]
            number = f"{prefix}{rng.randrange(10**digits):0{digits}d}"
            if number not in self.phones_used:
                self.phones_used.add(number)
                phone = number
                phone_normalized = "+" + re.sub(r"\D", "", phone)

        roll = random_()
        consent_status, consent_at, consent_source, consent_note = (
            "legitimate_interest",
            None,
            None,
            None,
        )
        if roll < 0.03:
            consent_status = "do_not_contact"
            consent_at = created + dt.timedelta(days=rng.uniform(1, 30))
            consent_note = "Asked not to be contacted again."
        elif roll < 0.28:
            consent_status = "consented"
            consent_at = created + dt.timedelta(hours=rng.uniform(0.1, 72))
            consent_source = rng.choice(CONSENT_SOURCES)
        if consent_at is not None and consent_at >= self.world.now:
            consent_at = created

        owner = self.owner()
        contacted = channel = contacted_by = engaged = None
        if random_() < 0.8:
            contacted = self.world.days_ago(400 * random_() ** 1.8 + rng.uniform(0.05, 1))
            if contacted <= created:
                contacted = created + (self.world.now - created) * rng.uniform(0.2, 0.95)
            contacted = contacted.replace(microsecond=0)
            channel = rng.choices(("email", "linkedin_message", "call"), (5, 4, 2))[0]
            contacted_by = owner if random_() < 0.8 else rng.choice(self.recruiters)
            if random_() < 0.35:
                engaged = contacted + dt.timedelta(hours=rng.uniform(1, 96))
                if engaged >= self.world.now:
                    engaged = None
        follow_up_on = follow_up_note = None
        if random_() < 0.01:
            follow_up_on = self.world.today + dt.timedelta(days=rng.randint(-10, 21))
            follow_up_note = rng.choice(FOLLOW_UP_NOTES)

        rows.append(
            {
                "id": cid,
                "first_name": first,
                "last_name": last,
                "email": email,
                "email_normalized": email_normalized,
                "linkedin_url": linkedin_url,
                "linkedin_normalized": linkedin_normalized,
                "phone": phone,
                "phone_normalized": phone_normalized,
                "location": location,
                "country": country,
                "remote": remote,
                "title": title(self.world.rng, family, years),
                "company": rng.choice(COMPANIES),
                "role_family": family.name,
                "years_experience": years,
                "source": rng.choices(SOURCES, cum_weights=self.source_weights)[0][0],
                "consent_status": consent_status,
                "consent_at": consent_at,
                "consent_source": consent_source,
                "consent_note": consent_note,
                "owner_id": owner,
                "custom_fields": {},
                "last_contacted_at": contacted,
                "last_contacted_by_id": contacted_by,
                "last_contact_channel": channel,
                "last_engaged_at": engaged,
                "unsubscribed_at": None,
                "follow_up_on": follow_up_on,
                "follow_up_note": follow_up_note,
                "import_batch_id": None,
                "version": 1,
                "updated_by_id": None,
                "created_at": created,
                "updated_at": max(created, contacted or created),
            }
        )
        names, weights = self.skill_tables[family.name]
        chosen: dict[str, None] = {}
        wanted = rng.randint(3, 8)
        while len(chosen) < wanted:
            chosen[rng.choices(names, cum_weights=weights)[0]] = None
        rows[-1]["skills"] = list(chosen)
        if random_() < 0.3:
            for tag in rng.sample(self.tags, rng.choice((1, 1, 2))):
                tag_rows.append({"candidate_id": cid, "tag": tag})
        self.world.by_family[family.name].append((cid, created))

        if random_() < 0.6:
            self.timeline(
                cid, family, location, created, contacted, channel, contacted_by, owner, activities
            )

    def timeline(
        self,
        cid: int,
        family: Family,
        city: str,
        created: dt.datetime,
        contacted: dt.datetime | None,
        channel: str | None,
        contacted_by: int | None,
        owner: int,
        activities: list[dict[str, Any]],
    ) -> None:
        """One to three notes, calls or messages; the last is the recorded contact, if any."""
        rng = self.world.rng
        end = contacted or self.world.now
        entries = rng.randint(1, 3)
        for index in range(entries):
            latest = index == entries - 1
            if latest and contacted is not None and channel is not None:
                kind, at, text = (
                    CHANNEL_KIND[channel],
                    contacted,
                    rng.choice(CHANNEL_NOTES[channel]),
                )
                actor, entry_channel = contacted_by, channel
            else:
                at = created + (end - created) * rng.uniform(0.05, 0.95)
                # Without a recorded contact, the timeline holds notes only.
                kind = "note" if contacted is None else rng.choice(NOTE_KINDS)
                pool = NOTES if kind == "note" else CHANNEL_NOTES[kind]
                text = rng.choice(pool)
                actor, entry_channel = owner, None if kind == "note" else kind
            activities.append(
                {
                    "candidate_id": cid,
                    "kind": kind,
                    "channel": entry_channel,
                    "occurred_at": at.replace(microsecond=0),
                    "actor_id": actor,
                    "summary": text.format(
                        city=city if city != "Remote" else "London",
                        salary=rng.randrange(45, 140, 5),
                        family=family.name,
                    ),
                    "campaign_id": None,
                }
            )
