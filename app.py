"""Candidate CRM: the login gate and the role-based navigation. Pages live in app_pages/."""

import streamlit as st

from app_pages import account, common, sign_in
from crm import auth, db
from crm.config import secret_key, sso_settings
from crm.errors import CrmError

st.set_page_config(page_title="Candidate CRM", page_icon=":material/diversity_3:", layout="wide")


# URL paths of the pages below, so a bookmarked page opens the sign-in screen (and then
# that page) instead of Streamlit's "page not found".
PAGE_PATHS = (
    "home",
    "candidates",
    "candidate",
    "pools",
    "campaigns",
    "calendar",
    "jobs",
    "goals",
    "import_export",
    "privacy",
    "audit",
)


def show_only(title: str, draw: object) -> None:
    """Show one screen (sign-in, or a configuration problem) whatever page the URL names."""
    screens = [st.Page(draw, title=title, url_path="welcome", default=True)]
    screens += [st.Page(draw, title=title, url_path=path) for path in (*PAGE_PATHS, "settings")]
    st.navigation(screens, position="hidden").run()
    st.stop()


try:
    engine = common.engine()
    db.require_current_schema(engine)
    secret = secret_key()
    sso = sso_settings()  # single sign-on (st.login), when CRM_OIDC_* is set
except CrmError as error:
    problem = str(error)

    def not_ready() -> None:
        st.title("Candidate CRM", anchor=False)
        st.error(problem)

    show_only("Candidate CRM", not_ready)

user = auth.session_user(engine, st.session_state)
if user is None and sso is not None:
    # Back from the provider (or a new tab with its cookie): st.user names the person;
    # the users table says who that is in the CRM and with which role.
    user = auth.sso_sign_in(
        engine, st.session_state, st.user.to_dict(), trusted_issuer=sso.trusted_issuer
    )
if user is None:

    def sign_in_screen() -> None:
        sign_in.login_screen(engine, secret, sso)

    show_only("Sign in", sign_in_screen)
st.session_state[common.CURRENT_USER_KEY] = user


def page(path: str, title: str, icon: str, help_text: str, *, default: bool = False) -> st.Page:
    return st.Page(path, title=title, icon=icon, help=help_text, default=default)


home = page(
    "app_pages/home.py",
    "Home",
    ":material/home:",
    "What needs attention today: content going out this week, campaign steps due, "
    "pools gone quiet and goals off track.",
    default=user.role != "manager",
)
goals = page(
    "app_pages/goals.py",
    "Goals & ROI",
    ":material/monitoring:",
    "Goals against their targets and the metrics that prove the return: source of hire, "
    "time-to-fill, cost-per-hire, offer acceptance.",
    default=user.role == "manager",
)
work_pages = [
    page(
        "app_pages/candidates.py",
        "Candidates",
        ":material/group:",
        "The shared candidate database: search, filter and open anyone's profile.",
    ),
    page(
        "app_pages/pools.py",
        "Talent pools",
        ":material/workspaces:",
        "Segments of the database that stay current, and hand-kept lists.",
    ),
    page(
        "app_pages/campaigns.py",
        "Campaigns",
        ":material/campaign:",
        "Personalized multi-step email sequences and how each one is doing.",
    ),
    page(
        "app_pages/calendar.py",
        "Content calendar",
        ":material/calendar_month:",
        "What each talent pool hears, week by week, on every channel.",
    ),
    page(
        "app_pages/jobs.py",
        "Jobs",
        ":material/work:",
        "Open roles, who is in each pipeline and at which stage, and what hiring costs.",
    ),
]
profile = st.Page(
    "app_pages/profile.py", title="Candidate", url_path="candidate", visibility="hidden"
)
import_export = page(
    "app_pages/import_export.py",
    "Import / export",
    ":material/swap_vert:",
    "Bring candidates in from CSV files and take them out again.",
)
privacy = page(
    "app_pages/privacy.py",
    "Privacy",
    ":material/shield_person:",
    "Consent to renew and records to review for retention; access and erasure requests.",
)
audit_log = page(
    "app_pages/audit.py",
    "Audit log",
    ":material/policy:",
    "Who created, changed, exported, sent, erased or signed in, and when. Admins only.",
)
settings = page(
    "app_pages/settings.py",
    "Settings",
    ":material/settings:",
    "Users and roles, and how the server is configured. Admins only.",
)

# Everyone sees every page; a manager's write controls are disabled, not hidden.
if user.role == "manager":
    sections: dict[str, list[st.Page]] = {"": [goals, home, *work_pages, import_export, profile]}
else:
    sections = {"": [home, *work_pages, goals, import_export, privacy, profile]}
if user.role == "admin":
    sections["Admin"] = [audit_log, settings]

navigation = st.navigation(sections, position="sidebar")

with st.sidebar:
    st.caption(f"Signed in as **{common.md(user.display_name)}** · {user.role}")
    if st.button("Sign out", icon=":material/logout:", key="sign_out"):
        auth.sign_out(engine, st.session_state, user)
        if sso is not None and st.user.to_dict().get("is_logged_in"):
            # End the provider's session too (Streamlit's cookie, and the provider's own
            # when it offers an end-session endpoint), or the next visit signs back in.
            st.logout()
            st.stop()
        st.rerun()
    account.password_controls(engine, user)

# The figures this run shows (common.figure_text), for tests/test_figures.py.
st.session_state[common.FIGURES_SHOWN] = []
navigation.run()
