"""One candidate's profile: every field (editable), the timeline, touchpoints, a reminder."""

import datetime as dt

import streamlit as st

from app_pages import common
from crm import (
    auth,
    candidates,
    clock,
    custom_fields,
    engagement,
    figures,
    privacy,
    touches,
    touchpoints,
)
from crm.candidate_fields import CONSENT_LABELS
from crm.errors import CrmError

engine = common.engine()
user = common.current_user()
writable = common.can_write()

raw_id = st.query_params.get("id", "")
candidate = candidates.get_candidate(engine, int(raw_id)) if raw_id.isdigit() else None
if candidate is None:
    st.title("Candidate", anchor=False)
    st.warning("This candidate does not exist (any more). Find someone on the Candidates page.")
    st.page_link("app_pages/candidates.py", label="Back to candidates", icon=":material/group:")
    st.stop()

cid = candidate.id
VERSION_KEY = f"profile_{cid}_version"  # the version this person's edit started from
if VERSION_KEY not in st.session_state:
    st.session_state[VERSION_KEY] = candidate.version


def field_key(name: str) -> str:
    return f"profile_{cid}_{name}"


def reload_latest() -> None:
    """Drop this page's unsaved input and start again from the stored version."""
    for key in list(st.session_state):
        if str(key).startswith(f"profile_{cid}_"):
            del st.session_state[key]


st.page_link("app_pages/candidates.py", label="Candidates", icon=":material/arrow_back:")
st.title(common.md(candidate.full_name or "(no name)"), anchor=False)
role = " at ".join(part for part in (candidate.title, candidate.company) if part)
place = candidate.location or ""
if candidate.remote:
    place = f"{place} · open to remote" if place else "Open to remote"
st.caption(" · ".join(common.md(part) for part in (role, place) if part) or "No title yet")

notice = st.session_state.pop(f"profile_notice_{cid}", None)
if notice:
    st.success(notice)

users = {u.id: u for u in auth.list_users(engine)}
# Last touch (either side, crm.touches) first; last contacted (our side) with who and how.
last_touch = touches.person_last_touch(candidate.last_contacted_at, candidate.last_engaged_at)
contacted = "never contacted"
if candidate.last_contacted_at:
    by = users.get(candidate.last_contacted_by_id)
    channel = (candidate.last_contact_channel or "").replace("_", " ")
    contacted = f"last contacted {figures.ago(candidate.last_contacted_at)}"
    contacted += f" by {by.display_name}" if by else ""
    contacted += f" ({channel})" if channel else ""
shown_touch = common.figure_text("person.last_touch", last_touch, subject=str(candidate.id))
contact = f"{touches.LABEL} {shown_touch} · {contacted}"
owner = users.get(candidate.owner_id)
basis_colour = {"consented": "green", "legitimate_interest": "blue", "do_not_contact": "red"}
badges = [
    f":{basis_colour[candidate.consent_status]}-badge[{CONSENT_LABELS[candidate.consent_status]}]",
    f":gray-badge[Owner: {common.md(owner.display_name) if owner else 'nobody'}]",
]
if candidate.follow_up_on:
    badges.append(f":orange-badge[Follow up {candidate.follow_up_on:%d %b %Y}]")
if candidate.source:
    badges.append(f":gray-badge[Source: {common.md(candidate.source)}]")
st.markdown(" ".join(badges))
st.markdown(f":material/schedule: {common.md(contact)}")

profile_tab, timeline_tab = st.tabs(["Profile", "Timeline"])

with profile_tab:
    if candidate.version != st.session_state[VERSION_KEY]:
        st.info(
            "This candidate changed since you opened the form. Saving will be refused; "
            "load the latest version first if you have not changed anything."
        )
    with st.form(f"profile_{cid}_form"):
        left, right = st.columns(2)
        values = {
            "first_name": left.text_input(
                "First name", candidate.first_name, key=field_key("first_name")
            ),
            "last_name": right.text_input(
                "Last name", candidate.last_name, key=field_key("last_name")
            ),
            "email": left.text_input("Email", candidate.email or "", key=field_key("email")),
            "linkedin_url": right.text_input(
                "LinkedIn URL", candidate.linkedin_url or "", key=field_key("linkedin_url")
            ),
            "phone": left.text_input("Phone", candidate.phone or "", key=field_key("phone")),
            "title": right.text_input("Title", candidate.title or "", key=field_key("title")),
            "company": left.text_input(
                "Company", candidate.company or "", key=field_key("company")
            ),
            "location": right.text_input(
                "Location", candidate.location or "", key=field_key("location")
            ),
            "country": left.text_input(
                "Country", candidate.country or "", key=field_key("country")
            ),
            "role_family": right.text_input(
                "Role family", candidate.role_family or "", key=field_key("role_family")
            ),
            "years_experience": left.number_input(
                "Years of experience",
                min_value=0,
                max_value=70,
                value=candidate.years_experience,
                step=1,
                key=field_key("years_experience"),
            ),
            "source": right.text_input("Source", candidate.source or "", key=field_key("source")),
            "skills": st.text_input(
                "Skills",
                ", ".join(sorted(candidate.skills)),
                key=field_key("skills"),
                help="Separate skills with commas.",
            ),
            "tags": st.text_input(
                "Tags",
                ", ".join(sorted(t.tag for t in candidate.tags)),
                key=field_key("tags"),
            ),
        }
        left, right = st.columns(2)
        values["consent_status"] = left.selectbox(
            "Lawful basis",
            list(CONSENT_LABELS),
            index=list(CONSENT_LABELS).index(candidate.consent_status),
            format_func=CONSENT_LABELS.get,
            key=field_key("consent_status"),
        )
        owner_choices = [None, *[u.id for u in users.values() if u.role != "manager"]]
        values["owner_id"] = right.selectbox(
            "Owner",
            owner_choices,
            index=owner_choices.index(candidate.owner_id)
            if candidate.owner_id in owner_choices
            else 0,
            format_func=lambda uid: "Nobody" if uid is None else users[uid].display_name,
            key=field_key("owner_id"),
        )
        values["remote"] = st.checkbox(
            "Open to remote work", candidate.remote, key=field_key("remote")
        )
        definitions = custom_fields.list_fields(engine)
        if definitions:
            st.markdown("**More about this person**")
            stored = candidate.custom_fields or {}
            custom_values: dict[str, object] = {}
            columns = st.columns(2)
            for index, definition in enumerate(definitions):
                column = columns[index % 2]
                current = stored.get(definition.key)
                key = field_key(f"custom_{definition.key}")
                if definition.kind == "number":
                    custom_values[definition.key] = column.number_input(
                        definition.label, value=current, key=key
                    )
                elif definition.kind == "date":
                    custom_values[definition.key] = column.date_input(
                        definition.label,
                        value=dt.date.fromisoformat(current) if current else None,
                        key=key,
                    )
                elif definition.kind == "choice":
                    options = [None, *(definition.choices or [])]
                    custom_values[definition.key] = column.selectbox(
                        definition.label,
                        options,
                        index=options.index(current) if current in options else 0,
                        format_func=lambda v: "–" if v is None else v,
                        key=key,
                    )
                else:
                    custom_values[definition.key] = column.text_input(
                        definition.label, current or "", key=key
                    )
            values["custom_fields"] = custom_values
        save = st.form_submit_button("Save changes", type="primary", disabled=not writable)
    if save:
        try:
            candidates.update_candidate(
                engine,
                actor=user,
                candidate_id=cid,
                expected_version=st.session_state[VERSION_KEY],
                fields=values,
            )
        except candidates.CandidateInvalid as error:
            for _, problem in error.problems:
                st.error(problem)
        except candidates.EditConflict as error:
            st.error(str(error))
            st.session_state[f"profile_{cid}_conflict"] = True
            # Kept apart from the form's keys so "load the latest version" does not lose it.
            st.session_state[f"pending_{cid}"] = {
                name: value for name, value in values.items() if value not in (None, "")
            }
        except CrmError as error:
            st.error(str(error))
        else:
            reload_latest()
            st.session_state[f"profile_notice_{cid}"] = "Saved."
            st.rerun()
    if st.session_state.get(f"profile_{cid}_conflict"):
        st.button(
            "Discard my changes and load the latest version",
            on_click=reload_latest,
            icon=":material/refresh:",
        )
    pending = st.session_state.get(f"pending_{cid}")
    if pending and not st.session_state.get(f"profile_{cid}_conflict"):
        with st.container(border=True):
            st.markdown("**Your unsaved input**, to reapply on the latest version:")
            st.markdown(
                "\n".join(
                    f"- {name.replace('_', ' ')}: {common.md(value)}"
                    for name, value in pending.items()
                    if name != "owner_id"
                )
            )
            if st.button("Done, hide this"):
                del st.session_state[f"pending_{cid}"]
                st.rerun()
    if not writable:
        common.read_only_caption()
    memberships = candidates.pools_of(engine, cid)
    if memberships:
        st.markdown(
            "**Hand-kept pools:** "
            + ", ".join(
                f"{common.md(name)}" + (f" ({common.md(stage)})" if stage else "")
                for name, stage in memberships
            )
        )

    if writable:  # Privacy: access, lawful basis and erasure (admins and recruiters)
        ERASE_FLAG = f"profile_erase_{cid}"  # the erase dialog is open

        @st.dialog("Erase this person", on_dismiss=lambda: st.session_state.pop(ERASE_FLAG, None))
        def erase_dialog() -> None:
            name = common.md(candidate.full_name or "(no name)")
            st.markdown(f"Erase **{name}**? This cannot be undone.")
            st.markdown(
                "- Their personal data and every timeline entry are removed for good.\n"
                "- Messages still queued for them are cancelled.\n"
                "- Anonymous counts stay, so campaign reports and metrics do not change.\n"
                "- Their address goes on the suppression list: they are never emailed again, "
                "even if an import brings them back."
            )
            if st.button("Erase permanently", type="primary", icon=":material/delete_forever:"):
                try:
                    done = privacy.erase(engine, actor=user, candidate_id=cid)
                except CrmError as error:
                    st.error(str(error))
                    return
                st.session_state.pop(ERASE_FLAG, None)
                reload_latest()
                suppressed = "the address is suppressed" if done.suppressed else "no address"
                st.session_state["candidates_notice"] = (
                    f"Erased: personal data removed, {done.messages_cancelled:,} queued "
                    f"message(s) cancelled, {suppressed}."
                )
                st.switch_page("app_pages/candidates.py")

        with st.expander("Privacy", icon=":material/shield_person:"):
            st.caption(
                "For an access request, download everything held about this person; each "
                "download is recorded in the audit log."
            )
            json_col, csv_col = st.columns(2)
            json_col.download_button(
                "Download everything we hold (JSON)",
                data=lambda: privacy.export_data_json(engine, actor=user, candidate_id=cid),
                file_name=f"candidate-{cid}-data.json",
                mime="application/json",
                icon=":material/download:",
                on_click="ignore",
                width="stretch",
            )
            csv_col.download_button(
                "Download everything we hold (CSV)",
                data=lambda: privacy.export_data_csv(engine, actor=user, candidate_id=cid),
                file_name=f"candidate-{cid}-data.csv",
                mime="text/csv",
                icon=":material/table:",
                on_click="ignore",
                width="stretch",
            )
            recorded = CONSENT_LABELS[candidate.consent_status]
            if candidate.consent_at:
                recorded += f", recorded {candidate.consent_at:%d %b %Y}"
            if candidate.consent_source:
                recorded += f" · {common.md(candidate.consent_source)}"
            st.markdown(f"**Lawful basis:** {recorded}")
            with st.form(f"profile_{cid}_basis_form"):
                left, right = st.columns(2)
                basis = left.selectbox(
                    "Basis to record",
                    list(CONSENT_LABELS),
                    index=list(CONSENT_LABELS).index(candidate.consent_status),
                    format_func=CONSENT_LABELS.get,
                    key=field_key("basis"),
                )
                given_on = right.date_input(
                    "Given or recorded on",
                    value=clock.today(),
                    max_value=clock.today(),
                    key=field_key("basis_on"),
                )
                basis_source = st.text_input(
                    "Where it came from",
                    candidate.consent_source or "",
                    max_chars=120,
                    placeholder="Replied yes to the renewal email",
                    key=field_key("basis_source"),
                )
                basis_note = st.text_input(
                    "Note",
                    candidate.consent_note or "",
                    max_chars=2000,
                    placeholder="What they agreed to, and how",
                    key=field_key("basis_note"),
                )
                record_basis = st.form_submit_button("Record the basis")
            if record_basis:
                now = clock.now()
                given_at = (
                    now
                    if given_on == now.date()
                    else dt.datetime.combine(given_on, dt.time(12), dt.UTC)
                )
                try:
                    privacy.set_consent(
                        engine,
                        actor=user,
                        candidate_id=cid,
                        status=basis,
                        source=basis_source,
                        note=basis_note,
                        at=given_at,
                    )
                except CrmError as error:
                    st.error(str(error))
                else:
                    reload_latest()  # the record changed: start the edit form afresh
                    st.session_state[f"profile_notice_{cid}"] = (
                        f"Recorded the lawful basis: {CONSENT_LABELS[basis]}."
                    )
                    st.rerun()
            if st.button("Erase this person…", icon=":material/delete:"):
                st.session_state[ERASE_FLAG] = True
        if st.session_state.get(ERASE_FLAG):
            erase_dialog()

with timeline_tab:
    touch, remind = st.columns(2)
    with touch, st.form(f"touch_{cid}", clear_on_submit=True):
        st.markdown("**Log a touchpoint**")
        channel = st.selectbox(
            "Channel", list(touchpoints.TOUCH_CHANNELS), format_func=touchpoints.TOUCH_CHANNELS.get
        )
        day = st.date_input("Date", value=clock.today(), max_value=clock.today())
        note = st.text_area("Note", placeholder="What was said, what comes next")
        if st.form_submit_button("Log it", disabled=not writable):
            now = clock.now()
            moment = now if day == now.date() else dt.datetime.combine(day, dt.time(12), dt.UTC)
            try:
                touchpoints.log_touchpoint(
                    engine,
                    actor=user,
                    candidate_id=cid,
                    channel=channel,
                    occurred_at=moment,
                    note=note,
                )
            except CrmError as error:
                st.error(str(error))
            else:
                st.session_state[f"profile_notice_{cid}"] = "Logged on the timeline."
                st.rerun()
    with remind, st.form(f"remind_{cid}"):
        st.markdown("**Follow-up reminder**")
        follow_on = st.date_input(
            "Remind me on",
            value=candidate.follow_up_on,
            min_value=clock.today() - dt.timedelta(days=365),
        )
        follow_note = st.text_input("About", value=candidate.follow_up_note or "")
        set_col, clear_col = st.columns(2)
        set_it = set_col.form_submit_button("Set reminder", disabled=not writable)
        clear_it = clear_col.form_submit_button("Clear", disabled=not writable)
        if set_it or clear_it:
            try:
                touchpoints.set_follow_up(
                    engine,
                    actor=user,
                    candidate_id=cid,
                    on=None if clear_it else follow_on,
                    note="" if clear_it else follow_note,
                )
            except CrmError as error:
                st.error(str(error))
            else:
                st.session_state[f"profile_notice_{cid}"] = (
                    "Reminder cleared." if clear_it else "Reminder set; it shows on Home when due."
                )
                st.rerun()
    with st.container(border=True):
        st.markdown(
            "**They answered an email** · replies are read from the mailbox when it is set "
            "up (CRM_IMAP_HOST); otherwise say so here. A reply stops the sequences whose "
            "next step says so."
        )
        answers = {"replied": None, "interested": "interested", "not now": "not_now"}
        columns = st.columns(len(answers))
        for column, (label, answer) in zip(columns, answers.items(), strict=True):
            if column.button(
                f"Mark {label}", key=f"profile_{cid}_reply_{label}", disabled=not writable
            ):
                try:
                    marked = engagement.record_reply(
                        engine,
                        candidate_id=cid,
                        answer=answer,
                        actor=user,
                        source="marked by hand",
                    )
                except CrmError as error:
                    st.error(str(error))
                else:
                    st.session_state[f"profile_notice_{cid}"] = (
                        f"Marked as {label}." if marked else "This person no longer exists."
                    )
                    st.rerun()
    entries = candidates.timeline(engine, cid)
    if not entries:
        st.caption("Nothing on the timeline yet.")
    lines = [
        f"**{entry.at:%d %b %Y %H:%M}** · {common.md(entry.summary)}"
        + (f" · :gray[{common.md(entry.actor)}]" if entry.actor else "")
        for entry in entries
    ]
    if lines:
        st.markdown("\n\n".join(lines))
