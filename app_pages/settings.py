"""Settings (admins): users and roles, and how this server is configured."""

import pandas as pd
import streamlit as st

from app_pages import common
from crm import auth, custom_fields, db, figures, money, outbox, throttle
from crm.config import load_settings, sso_settings
from crm.errors import CrmError
from crm.models import ROLES

st.title("Settings", anchor=False)
admin = common.current_user()
engine = common.engine()
if admin.role != "admin":
    # The menu only offers this page to admins; a typed URL must not get further.
    st.error("Only an admin can open Settings.")
    st.stop()

st.subheader("Users", anchor=False)
users = auth.list_users(engine)
st.dataframe(
    pd.DataFrame(
        {
            "username": [u.username for u in users],
            "name": [u.display_name for u in users],
            "email": [u.email or "" for u in users],
            "role": [u.role for u in users],
            "active": [u.active for u in users],
            "last sign-in": [
                figures.ago(u.last_login_at) if u.last_login_at else "never" for u in users
            ],
            "failed sign-ins": [u.failed_login_attempts for u in users],
        }
    ),
    hide_index=True,
    width="stretch",
)

notice = st.session_state.pop("settings_notice", None)
if notice:
    st.success(notice)

OPEN_DIALOG = "settings_dialog"  # which dialog is open: "add" or "change"


def close_with(message: str) -> None:
    st.session_state.pop(OPEN_DIALOG, None)
    st.session_state["settings_notice"] = message
    st.rerun()


def forget_dialog() -> None:
    """Closing a dialog with its X or Escape: do not reopen it on the next rerun."""
    st.session_state.pop(OPEN_DIALOG, None)


@st.dialog("Add a user", on_dismiss=forget_dialog)
def add_user_dialog() -> None:
    with st.form("add_user", border=False):
        username = st.text_input("Username")
        display_name = st.text_input("Full name")
        email = st.text_input("Email (optional)")
        new_role = st.selectbox("Role", ROLES, index=1)
        password = st.text_input(
            "Password",
            type="password",
            help=f"At least {auth.MIN_PASSWORD_LENGTH} characters, and hard to guess.",
        )
        submitted = st.form_submit_button("Add user", type="primary")
    if submitted:
        try:
            auth.create_user(
                engine,
                actor=admin,
                username=username,
                role=new_role,
                password=password,
                display_name=display_name or username,
                email=email or None,
            )
        except CrmError as error:
            st.error(str(error))
            return
        close_with(f"Added {common.md(username.strip().lower())}.")


@st.dialog("Change a user", on_dismiss=forget_dialog)
def change_user_dialog() -> None:
    by_name = {u.username: u for u in users}
    chosen = by_name[st.selectbox("User", list(by_name), key="settings_user")]
    # Keyed by user: the role shown is always the chosen user's, not the last one's.
    role = st.selectbox(
        "Role", ROLES, index=ROLES.index(chosen.role), key=f"settings_role_{chosen.id}"
    )
    role_col, active_col = st.columns(2)
    try:
        if role_col.button("Save role", disabled=role == chosen.role, width="stretch"):
            auth.set_role(engine, actor=admin, user_id=chosen.id, role=role)
            close_with(f"{common.md(chosen.username)} is now a {role}.")
        label = "Deactivate" if chosen.active else "Reactivate"
        if active_col.button(label, width="stretch", disabled=chosen.id == admin.id):
            auth.set_active(engine, actor=admin, user_id=chosen.id, active=not chosen.active)
            state = "deactivated" if chosen.active else "reactivated"
            close_with(f"{common.md(chosen.username)} is {state}.")
    except CrmError as error:
        st.error(str(error))
    if chosen.id == admin.id:
        st.caption("You cannot deactivate yourself.")
    wait = auth.sign_in_wait(chosen)
    if chosen.failed_login_attempts:
        waiting = f", and must wait {throttle.describe(wait)}" if wait else ""
        st.caption(
            f"{common.md(chosen.username)} has {chosen.failed_login_attempts} failed sign-ins "
            f"in a row{waiting}."
        )
        if st.button("Let them sign in now", icon=":material/lock_open:", key="settings_unlock"):
            try:
                auth.unlock(engine, actor=admin, user_id=chosen.id)
            except CrmError as error:
                st.error(str(error))
            else:
                close_with(f"{common.md(chosen.username)} can sign in again now.")
    with st.form("settings_password", border=False):
        password = st.text_input(
            f"New password for {chosen.username}",
            type="password",
            help=f"At least {auth.MIN_PASSWORD_LENGTH} characters. Their sessions end.",
        )
        if st.form_submit_button("Set password"):
            try:
                auth.set_password(engine, actor=admin, user_id=chosen.id, password=password)
            except CrmError as error:
                st.error(str(error))
            else:
                if chosen.id == admin.id:
                    auth.sign_in_session(st.session_state, admin)  # this session carries on
                close_with(
                    f"Set a new password for {common.md(chosen.username)}; "
                    "their open sessions have ended."
                )


# Flex rows rather than columns: the same buttons with fewer blocks to lay out.
user_buttons = st.container(horizontal=True)
if user_buttons.button("Add a user", icon=":material/person_add:"):
    st.session_state[OPEN_DIALOG] = "add"
if user_buttons.button("Change a user", icon=":material/manage_accounts:"):
    st.session_state[OPEN_DIALOG] = "change"
# Dialogs open from session state, so their buttons work on the reruns they cause.
if st.session_state.get(OPEN_DIALOG) == "add":
    add_user_dialog()
elif st.session_state.get(OPEN_DIALOG) == "change":
    change_user_dialog()

st.subheader("Custom candidate fields", anchor=False)
definitions = custom_fields.list_fields(engine)
if definitions:
    st.markdown(
        "\n".join(
            f"- **{common.md(d.label)}** · {custom_fields.KIND_LABELS[d.kind]}"
            + (f": {common.md(', '.join(d.choices or []))}" if d.kind == "choice" else "")
            for d in definitions
        )
    )
else:
    st.caption("No custom fields yet. Add one to record what your team tracks about people.")


@st.dialog("Add a custom field", on_dismiss=forget_dialog)
def add_field_dialog() -> None:
    with st.form("add_custom_field", border=False):
        label = st.text_input("Field label", placeholder="Notice period")
        kind = st.selectbox(
            "Kind", list(custom_fields.KIND_LABELS), format_func=custom_fields.KIND_LABELS.get
        )
        choices = st.text_input(
            "Choices (for a choice field)", placeholder="Immediate, 1 month, 3 months"
        )
        submitted = st.form_submit_button("Add field", type="primary")
    if submitted:
        try:
            custom_fields.create_field(
                engine, actor=admin, label=label, kind=kind, choices=choices.split(",")
            )
        except CrmError as error:
            st.error(str(error))
            return
        close_with(f"Added the field {common.md(label)}.")


@st.dialog("Remove a custom field", on_dismiss=forget_dialog)
def remove_field_dialog() -> None:
    by_id = {d.id: d.label for d in definitions}
    doomed = st.selectbox("Field", list(by_id), format_func=by_id.get)
    st.caption("Stored values are kept but no longer shown or editable.")
    if st.button("Remove field", type="primary"):
        custom_fields.delete_field(engine, actor=admin, field_id=doomed)
        close_with(f"Removed {common.md(by_id[doomed])}.")


field_buttons = st.container(horizontal=True)
if field_buttons.button("Add a field", icon=":material/add:"):
    st.session_state[OPEN_DIALOG] = "field_add"
if field_buttons.button("Remove a field", icon=":material/remove:", disabled=not definitions):
    st.session_state[OPEN_DIALOG] = "field_remove"
if st.session_state.get(OPEN_DIALOG) == "field_add":
    add_field_dialog()
elif st.session_state.get(OPEN_DIALOG) == "field_remove" and definitions:
    remove_field_dialog()

st.subheader("Campaign frequency cap", anchor=False)
cap_emails, cap_days = outbox.current_frequency_cap(engine)
with st.form("frequency_cap"):
    st.caption(
        "Across all campaigns, nobody gets more than this many campaign emails in this many "
        "days; a message over the cap waits until it fits, it is never dropped."
    )
    numbers = st.container(horizontal=True)
    emails = numbers.number_input("Emails at most", min_value=1, max_value=50, value=cap_emails)
    days = numbers.number_input("In days", min_value=1, max_value=90, value=cap_days)
    if st.form_submit_button("Save the cap"):
        try:
            outbox.set_frequency_cap(engine, actor=admin, emails=int(emails), days=int(days))
        except CrmError as error:
            st.error(str(error))
        else:
            st.session_state["settings_notice"] = (
                f"Frequency cap saved: at most {int(emails)} emails per person in {int(days)} days."
            )
            st.rerun()

st.subheader("Money", anchor=False)
team_money = money.team_money(engine)
in_use = money.currencies_in_use(engine)
st.caption(
    f"Cost figures (total cost, cost per hire, savings) are in **{team_money.currency}**. A cost "
    f"in another currency is counted at its rate: 1 unit of it = the rate in "
    f"{team_money.currency}. A cost in a currency with no rate is refused."
)
money_rows = [
    {
        "currency": use.currency,
        "costs": use.costs,
        "counted": "team currency"
        if use.currency == team_money.currency
        else (
            f"at {money.rate_text(team_money.rates[use.currency])}"
            if use.covered
            else "no rate: left out of the figures"
        ),
    }
    for use in in_use
]
used = {use.currency for use in in_use}
money_rows += [
    {"currency": code, "costs": 0, "counted": f"at {money.rate_text(rate)}"}
    for code, rate in sorted(team_money.rates.items())
    if code not in used
]
if money_rows:
    st.dataframe(pd.DataFrame(money_rows), hide_index=True)
else:
    st.caption("No costs recorded yet, and no rates.")
missing = [use for use in in_use if not use.covered]
if missing:
    st.warning(money.figures_note(engine) or "", icon=":material/currency_exchange:")


def money_saved(message: str) -> None:
    st.session_state["settings_notice"] = message
    st.rerun()


rate_column, currency_column = st.columns(2)
with rate_column.form("money_rate"):
    st.markdown("**Enter or change a rate**")
    # An example that is never the team's own currency (which needs no rate).
    example = "EUR" if team_money.currency != "EUR" else "USD"
    rate_currency = st.text_input("Currency", max_chars=3, placeholder=example)
    rate_value = st.text_input(
        f"Rate (1 unit = this many {team_money.currency})", placeholder="1.17"
    )
    if st.form_submit_button("Save the rate"):
        try:
            saved = money.set_rate(engine, actor=admin, currency=rate_currency, rate=rate_value)
        except CrmError as error:
            st.error(str(error))
        else:
            code = rate_currency.strip().upper()
            money_saved(
                f"1 {code} now counts as {money.rate_text(saved.rates[code])} {saved.currency}."
            )
with currency_column.form("money_currency"):
    st.markdown("**Change the team currency**")
    new_currency = st.text_input("Team currency", value=team_money.currency, max_chars=3)
    new_rates = st.text_area(
        "Rates to the new currency",
        placeholder="USD 0.92\nGBP 1.17",
        help="One currency and its rate a line. The current rates are to "
        f"{team_money.currency}, so they are replaced: give a rate for every currency "
        "your costs are in.",
    )
    if st.form_submit_button("Change the currency"):
        try:
            parsed = money.parse_rates(new_rates)
            same = new_currency.strip().upper() == team_money.currency
            saved = money.set_team_currency(
                engine,
                actor=admin,
                currency=new_currency,
                # Blank rates for the same currency change nothing (not "remove them all").
                rates=None if same and not parsed else parsed,
            )
        except CrmError as error:
            st.error(str(error))
        else:
            money_saved(f"Cost figures are now in {saved.currency}.")
if team_money.rates:
    with st.form("money_remove"):
        doomed_rate = st.selectbox("Rate to remove", sorted(team_money.rates))
        if st.form_submit_button("Remove the rate"):
            try:
                money.remove_rate(engine, actor=admin, currency=doomed_rate)
            except CrmError as error:
                st.error(str(error))
            else:
                money_saved(f"Removed the {doomed_rate} rate.")

st.subheader("Server", anchor=False)
settings = load_settings()
smtp = settings.smtp
sso = sso_settings()
server_rows = {
    "Database": db.describe(db.parse_url(settings.database_url)),
    "Public URL (tracking links)": settings.public_url,
    "Sending": f"{smtp.host}:{smtp.port} ({smtp.security})"
    if smtp
    else "off: CRM_SMTP_HOST is not set",
    "Delivery worker in this process": "on"
    if settings.worker_enabled
    else "off (separate `crm send` workers)",
    "Send rate": f"{settings.send_rate:g} messages per second",
    "Single sign-on": f"{sso.name}, by email ({sso.metadata_url})"
    if sso
    else "off: CRM_OIDC_METADATA_URL is not set (passwords only)",
}
st.markdown(
    "| setting | value |\n| --- | --- |\n"
    + "\n".join(f"| {name} | {common.md(value)} |" for name, value in server_rows.items())
    + "\n\n:gray[These come from environment variables or .streamlit/secrets.toml; see README.]"
)
