"""The audit log: who created, changed, exported, sent, erased or signed in, and when."""

from __future__ import annotations

from sqlalchemy import Engine, select

from crm import (
    audit_log,
    auth,
    campaign_lifecycle,
    campaigns,
    candidates,
    clock,
    composer,
    db,
    exporter,
    outbox,
    privacy,
)
from crm.models import AuditLog, User
from tests.conftest import PASSWORDS, signs_in
from tests.smtp_server import FaultySmtpServer


def entries(engine: Engine) -> list[tuple[str | None, str, str | None, str | None]]:
    """(username, action, entity, entity id) of every entry, oldest first."""
    with db.read_session(engine) as session:
        return [
            (e.username, e.action, e.entity, e.entity_id)
            for e in session.scalars(select(AuditLog).order_by(AuditLog.id))
        ]


def test_each_kind_of_action_leaves_an_entry_naming_who_did_it(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    recruiter = users["recruiter"]
    sender = auth.create_user(
        engine, username="sam", role="recruiter", password=PASSWORDS["recruiter"],
        display_name="Sam Sender", email="sam@acme.example", actor=users["admin"],
    )  # fmt: skip
    started = len(entries(engine))

    assert signs_in(engine, "recruiter", PASSWORDS["recruiter"])
    ana = candidates.create_candidate(
        engine, actor=recruiter, fields={"first_name": "Ana", "last_name": "Lima",
                                         "email": "ana@example.com"},
    )  # fmt: skip
    candidates.update_candidate(
        engine, actor=recruiter, candidate_id=ana.id, expected_version=ana.version,
        fields={"title": "Lead engineer"},
    )  # fmt: skip
    exporter.export_to_bytes(engine, actor=recruiter, scope=exporter.ExportScope(text="Lima"))
    privacy.export_data(engine, actor=recruiter, candidate_id=ana.id)
    campaign_id = campaigns.save_campaign(
        engine,
        actor=sender,
        draft=campaigns.CampaignDraft(
            name="Hello", steps=[campaigns.StepDraft(subject="Hi", body="Hello {{first_name}}")],
            candidate_ids=[ana.id],
        ),
    )  # fmt: skip
    composer.send_test(engine, actor=sender, campaign_id=campaign_id, step=1, candidate_id=ana.id)
    campaign_lifecycle.launch(engine, actor=sender, campaign_id=campaign_id)
    assert outbox.deliver_due(engine).sent == 1
    privacy.erase(engine, actor=users["admin"], candidate_id=ana.id)
    auth.sign_out(engine, {}, recruiter)

    logged = entries(engine)[started:]
    assert logged == [
        ("recruiter", "login", "user", str(recruiter.id)),
        ("recruiter", "candidate.create", "candidate", str(ana.id)),
        ("recruiter", "candidate.update", "candidate", str(ana.id)),
        ("recruiter", "export", "candidate", None),
        ("recruiter", "candidate.export_data", "candidate", str(ana.id)),
        ("sam", "campaign.save", "campaign", str(campaign_id)),
        ("sam", "campaign.send_test", "campaign", str(campaign_id)),
        ("sam", "campaign.launch", "campaign", str(campaign_id)),
        ("admin", "candidate.erase", "candidate", str(ana.id)),
        ("recruiter", "logout", "user", str(recruiter.id)),
    ]
    # The admin page reads them back, newest first, with when each happened.
    page, total = audit_log.entries(engine, actor=users["admin"], username="sam")
    assert total == 3
    assert [row["action"] for row in page] == [
        "campaign.launch", "campaign.send_test", "campaign.save",
    ]  # fmt: skip
    assert page[1]["detail"] == {"step": 1}  # not who it was rendered for, nor the address
    now = clock.now()
    assert all(abs((now - row["at"]).total_seconds()) < 60 for row in page)
