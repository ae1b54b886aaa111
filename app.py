"""Candidate CRM: the login gate and the role-based navigation. Pages live in pages/."""

import streamlit as st

from crm import auth, db
from crm.config import secret_key
from crm.errors import CrmError
from pages import common

st.set_page_config(page_title="Candidate CRM", page_icon=":material/diversity_3:", layout="wide")



def show_only(title: str, draw: object) -> None:
    """Run a single hidden page, so Streamlit never lists the files in pages/ instead."""
    st.navigation([st.Page(draw, title=title, url_path="welcome")], position="hidden").run()
    st.stop()


try:
    engine = common.engine()
    db.require_current_schema(engine)
    secret = secret_key()
except CrmError as error:
    problem = str(error)

    def not_ready() -> None:
        st.title("Candidate CRM", anchor=False)
        st.error(problem)

    show_only("Candidate CRM", not_ready)

user = auth.session_user(engine, st.session_state)
if user is None:

    def sign_in() -> None:
        auth.login_screen(engine, secret)

    show_only("Sign in", sign_in)
st.session_state[common.CURRENT_USER_KEY] = user


def page(path: str, title: str, icon: str, help_text: str, *, default: bool = False) -> st.Page:
    return st.Page(path, title=title, icon=icon, help=help_text, default=default)


home = page(
    "pages/home.py",
    "Home",
    ":material/home:",
    "What needs attention today: content going out this week, campaign steps due, "
    "pools gone quiet and goals off track.",
    default=user.role != "manager",
)
goals = page(
    "pages/goals.py",
    "Goals & ROI",
    ":material/monitoring:",
    "Goals against their targets and the metrics that prove the return: source of hire, "
    "time-to-fill, cost-per-hire, offer acceptance.",
    default=user.role == "manager",
)
work_pages = [
    page(
        "pages/candidates.py",
        "Candidates",
        ":material/group:",
        "The shared candidate database: search, filter and open anyone's profile.",
    ),
    page(
        "pages/pools.py",
        "Talent pools",
        ":material/workspaces:",
        "Segments of the database that stay current, and hand-kept lists.",
    ),
    page(
        "pages/campaigns.py",
        "Campaigns",
        ":material/campaign:",
        "Personalized multi-step email sequences and how each one is doing.",
    ),
    page(
        "pages/calendar.py",
        "Content calendar",
        ":material/calendar_month:",
        "What each talent pool hears, week by week, on every channel.",
    ),
]
import_export = page(
    "pages/import_export.py",
    "Import / export",
    ":material/swap_vert:",
    "Bring candidates in from CSV files and take them out again.",
)
settings = page(
    "pages/settings.py",
    "Settings",
    ":material/settings:",
    "Users and roles, and how the server is configured. Admins only.",
)

sections: dict[str, list[st.Page]] = {"": [home, *work_pages, goals]}
if user.role in {"admin", "recruiter"}:
    sections[""].append(import_export)
else:
    # Managers read: no import, and no page they could only half use.
    sections[""] = [goals, home, *work_pages]
if user.role == "admin":
    sections["Admin"] = [settings]

navigation = st.navigation(sections, position="sidebar")

with st.sidebar:
    st.caption(f"Signed in as **{user.display_name}** · {user.role}")
    if st.button("Sign out", icon=":material/logout:", key="sign_out"):
        auth.sign_out(engine, st.session_state, user)
        st.rerun()

navigation.run()
