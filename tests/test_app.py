"""The real app under Streamlit's AppTest: the login gate, role menus, every page."""

from __future__ import annotations

import pytest
import time_machine
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from crm import auth, clock, throttle
from crm.errors import ValidationError
from crm.models import User
from tests.conftest import PASSWORDS, PROJECT_ROOT, signs_in

APP = str(PROJECT_ROOT / "app.py")
EVERY_PAGE = [
    "app_pages/home.py",
    "app_pages/candidates.py",
    "app_pages/pools.py",
    "app_pages/campaigns.py",
    "app_pages/calendar.py",
    "app_pages/jobs.py",
    "app_pages/goals.py",
    "app_pages/import_export.py",
]
WRITERS_ONLY = ["app_pages/privacy.py"]
ADMIN_ONLY = ["app_pages/audit.py", "app_pages/settings.py"]


def app_as(user: User | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if user is not None:
        auth.sign_in_session(at.session_state, user)
    return at


def texts(at: AppTest) -> str:
    parts = (
        [e.value for e in at.title]
        + [e.value for e in at.markdown]
        + [e.value for e in at.subheader]
    )
    return "\n".join(str(p) for p in parts)


def test_unmigrated_database_says_run_crm_init(crm_env: str) -> None:
    at = app_as(None).run()
    assert not at.exception
    assert "run `crm init`" in at.error[0].value


def test_first_start_offers_to_create_the_first_admin(engine: Engine) -> None:
    at = app_as(None).run()
    assert not at.exception
    assert "Create the first admin" in texts(at)
    at.text_input[0].input("ada")
    at.text_input[1].input("Ada Lovelace")
    at.text_input[3].input("analytical-engine-1")
    at.text_input[4].input("analytical-engine-1")
    at.button[0].click().run()
    assert not at.exception
    assert "Good" in at.title[0].value and "Ada Lovelace" in at.title[0].value
    assert auth.find_user(engine, "ada").role == "admin"


def test_no_page_renders_without_login(users: dict[str, User]) -> None:
    at = app_as(None).run()
    assert not at.exception
    assert "Sign in" in texts(at)
    assert not at.metric and not at.dataframe
    for page in EVERY_PAGE + WRITERS_ONLY + ADMIN_ONLY:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)


@pytest.mark.parametrize(
    "role, landing, pages",
    [
        ("admin", "Good", EVERY_PAGE + WRITERS_ONLY + ADMIN_ONLY),
        ("recruiter", "Good", EVERY_PAGE + WRITERS_ONLY),
        ("manager", "Goals & ROI", EVERY_PAGE),
    ],
)
def test_each_role_sees_its_menu(
    users: dict[str, User], role: str, landing: str, pages: list[str]
) -> None:
    at = app_as(users[role]).run()
    assert not at.exception
    assert at.title[0].value.startswith(landing)
    for page in pages:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
    for hidden in (page for page in WRITERS_ONLY + ADMIN_ONLY if page not in pages):
        # Not in this role's menu, so no URL reaches it.
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(hidden)


def test_deactivation_takes_effect_on_the_next_rerun(
    users: dict[str, User], engine: Engine
) -> None:
    at = app_as(users["recruiter"]).run()
    assert at.title[0].value.startswith("Good")
    auth.set_active(engine, actor=users["admin"], user_id=users["recruiter"].id, active=False)
    at.run()
    assert "Sign in" in texts(at)
    assert "deactivated" in at.info[0].value


def test_sign_out_button(users: dict[str, User]) -> None:
    at = app_as(users["recruiter"]).run()
    at.sidebar.button(key="sign_out").click().run()
    assert not at.exception
    assert "Sign in" in texts(at)
    assert "signed out" in at.info[0].value


def test_admin_adds_a_user_and_bad_input_gets_a_sentence(
    users: dict[str, User], engine: Engine
) -> None:
    at = app_as(users["admin"]).run()
    at.switch_page("app_pages/settings.py").run()
    assert not any(w.label == "Username" for w in at.text_input)  # it opens in a dialog
    next(b for b in at.button if b.label == "Add a user").click().run()
    inputs = {widget.label: widget for widget in at.text_input}
    inputs["Username"].input("newbie")
    inputs["Password"].input("short")
    at.button(key="FormSubmitter:add_user-Add user").click().run()
    assert not at.exception
    assert "at least 12 characters" in at.error[0].value
    assert auth.find_user(engine, "newbie") is None
    inputs = {widget.label: widget for widget in at.text_input}
    inputs["Username"].input("newbie")
    inputs["Password"].input("long-enough-1")
    at.button(key="FormSubmitter:add_user-Add user").click().run()
    assert not at.exception
    assert auth.find_user(engine, "newbie").role == "recruiter"
    assert at.success[0].value == "Added newbie."
    assert not any(w.label == "Username" for w in at.text_input)  # the dialog closed


def test_admin_lets_a_waiting_user_in_and_sets_a_new_password(
    users: dict[str, User], engine: Engine
) -> None:
    for _ in range(6):
        assert not signs_in(engine, "recruiter", "wrong-password")
    state: dict = {}
    auth.sign_in_session(state, users["recruiter"])  # the recruiter's open browser session
    at = app_as(users["admin"]).run()
    at.switch_page("app_pages/settings.py").run()
    next(b for b in at.button if b.label == "Change a user").click().run()
    at.selectbox(key="settings_user").select("recruiter").run()
    assert any("5 failed sign-ins in a row, and must wait" in c.value for c in at.caption)
    at.button(key="settings_unlock").click().run()
    assert not at.exception
    assert at.success[0].value == "recruiter can sign in again now."
    assert signs_in(engine, "recruiter", PASSWORDS["recruiter"])
    next(b for b in at.button if b.label == "Change a user").click().run()
    at.selectbox(key="settings_user").select("recruiter").run()
    password = next(w for w in at.text_input if w.label == "New password for recruiter")
    password.input("password1234")
    at.button(key="FormSubmitter:settings_password-Set password").click().run()
    assert "stronger password" in at.error[0].value
    password = next(w for w in at.text_input if w.label == "New password for recruiter")
    password.input("a-fresh-start-for-rita")
    at.button(key="FormSubmitter:settings_password-Set password").click().run()
    assert not at.exception
    assert "their open sessions have ended" in at.success[0].value
    assert signs_in(engine, "recruiter", "a-fresh-start-for-rita")
    assert auth.session_user(engine, state) is None


def test_everyone_changes_their_own_password_and_other_sessions_end(
    users: dict[str, User], engine: Engine
) -> None:
    other_tab: dict = {}
    auth.sign_in_session(other_tab, users["manager"])
    at = app_as(users["manager"]).run()
    at.sidebar.button(key="own_password").click().run()
    fields = {w.label: w for w in at.text_input}
    fields["Current password"].input("not-my-password")
    fields["New password"].input("a-manager-reads-in-peace")
    fields["Repeat the new password"].input("a-manager-reads-in-peace")
    at.button(key="FormSubmitter:own_password-Change password").click().run()
    assert at.error[0].value == "Your current password is not right."
    fields = {w.label: w for w in at.text_input}
    fields["Current password"].input(PASSWORDS["manager"])
    fields["New password"].input("a-manager-reads-in-peace")
    fields["Repeat the new password"].input("a-manager-reads-in-peace")
    at.button(key="FormSubmitter:own_password-Change password").click().run()
    assert not at.exception
    assert "Your password is changed" in at.sidebar.success[0].value
    assert "Goals" in texts(at)  # this session carries on
    assert auth.session_user(engine, other_tab) is None
    assert signs_in(engine, "manager", "a-manager-reads-in-peace")


def test_guessing_the_current_password_from_an_open_session_waits_too(
    users: dict[str, User], engine: Engine
) -> None:
    with time_machine.travel(clock.now(), tick=False):
        for _ in range(throttle.FREE_FAILURES):
            with pytest.raises(ValidationError, match="current password is not right"):
                auth.change_own_password(engine, actor=users["recruiter"],
                                         current_password="guess-guess-guess",
                                         new_password="a-brand-new-phrase-1")  # fmt: skip
        with pytest.raises(ValidationError, match="Too many failed sign-ins; wait 30 seconds"):
            auth.change_own_password(engine, actor=users["recruiter"],
                                     current_password=PASSWORDS["recruiter"],
                                     new_password="a-brand-new-phrase-1")  # fmt: skip


def test_admin_changes_a_role_and_cannot_remove_the_last_admin(
    users: dict[str, User], engine: Engine
) -> None:
    at = app_as(users["admin"]).run()
    at.switch_page("app_pages/settings.py").run()
    next(b for b in at.button if b.label == "Change a user").click().run()
    at.selectbox(key="settings_user").select("manager").run()
    manager_role = at.selectbox(key=f"settings_role_{users['manager'].id}")
    assert manager_role.value == "manager"  # the chosen user's role, not the last one shown
    manager_role.select("recruiter").run()
    next(b for b in at.button if b.label == "Save role").click().run()
    assert not at.exception
    assert auth.find_user(engine, "manager").role == "recruiter"
    assert at.success[0].value == "manager is now a recruiter."
    next(b for b in at.button if b.label == "Change a user").click().run()
    at.selectbox(key="settings_user").select("admin").run()
    deactivate = next(b for b in at.button if b.label == "Deactivate")
    assert deactivate.disabled  # nobody deactivates themself


def test_manager_sees_read_only_goals_page(users: dict[str, User]) -> None:
    at = app_as(users["manager"]).run()
    assert at.title[0].value == "Goals & ROI"
    assert not at.button(key="sign_out").disabled
    # No input on the page writes anything: the only buttons are navigation-free.
    page_buttons = [b for b in at.main.button]
    assert page_buttons == []


def test_pages_render_with_data_for_admin(users: dict[str, User], engine: Engine) -> None:
    from crm import demo

    demo.load_demo(engine, candidates=200, seed=3, today=clock.today())
    at = app_as(users["admin"]).run()
    assert not at.exception
    for page in EVERY_PAGE + WRITERS_ONLY + ADMIN_ONLY:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
    at.switch_page("app_pages/candidates.py").run()
    assert len(at.dataframe[0].value) == 50
    at.text_input(key="candidates_search").input("python").run()
    assert not at.exception
    assert all(at.dataframe[0].value.shape)


# --- single sign-on (st.login): the gate maps st.user to a user by email ---------------


@pytest.fixture
def sso_env(monkeypatch: pytest.MonkeyPatch, crm_env: str) -> None:
    monkeypatch.setenv("CRM_OIDC_METADATA_URL", "https://id.acme.example/.well-known/openid")
    monkeypatch.setenv("CRM_OIDC_CLIENT_ID", "crm")
    monkeypatch.setenv("CRM_OIDC_CLIENT_SECRET", "client-secret")
    monkeypatch.setenv("CRM_OIDC_NAME", "Acme ID")


def _signed_in_at_provider(email: str) -> dict:
    return {
        "is_logged_in": True,
        "email": email,
        "email_verified": True,
        "name": "Whoever The Provider Says",
        "sub": "sub-1",
        "iss": "https://id.acme.example",
        "iat": int(clock.now().timestamp()),
    }


def _set_email(engine: Engine, user: User, email: str) -> None:
    from crm import db

    with db.write_session(engine) as session:
        session.get(User, user.id).email = email


@pytest.mark.parametrize(
    "role, landing, has_settings",
    [("manager", "Goals & ROI", False), ("recruiter", "Good", False), ("admin", "Good", True)],
)
def test_sso_person_lands_in_the_app_with_the_role_of_their_email(
    sso_env: None,
    users: dict[str, User],
    engine: Engine,
    role: str,
    landing: str,
    has_settings: bool,
) -> None:
    _set_email(engine, users[role], f"{role}@acme.example")
    at = app_as(None)
    at.user = _signed_in_at_provider(f"{role.upper()}@acme.example")
    at.run()
    assert not at.exception
    assert at.title[0].value.startswith(landing)
    assert f"· {role}" in at.sidebar.caption[0].value
    assert users[role].display_name in at.sidebar.caption[0].value  # the CRM's name
    if has_settings:
        at.switch_page("app_pages/settings.py").run()
        assert not at.exception
        assert "| Single sign-on | Acme ID, by email" in texts(at)
    else:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page("app_pages/settings.py")


def test_sso_unknown_email_stays_on_the_sign_in_screen_with_the_sentence(
    sso_env: None, users: dict[str, User]
) -> None:
    at = app_as(None)
    at.user = _signed_in_at_provider("stranger@acme.example")
    at.run()
    assert not at.exception
    assert "Sign in" in texts(at)
    assert not at.sidebar.button
    assert at.error[0].value.startswith(
        "No Candidate CRM user has the email address stranger@acme.example;"
    )
    labels = [button.label for button in at.button]
    assert "Sign in with Acme ID" in labels and "Sign out of Acme ID" in labels
    assert [field.label for field in at.text_input] == ["Username", "Password"]  # stays


def test_without_sso_settings_a_provider_identity_signs_nobody_in(
    users: dict[str, User], engine: Engine
) -> None:
    _set_email(engine, users["recruiter"], "recruiter@acme.example")
    at = app_as(None)
    at.user = _signed_in_at_provider("recruiter@acme.example")
    at.run()
    assert not at.exception
    assert "Sign in" in texts(at)
    assert [button.label for button in at.button if "Acme" in button.label] == []


def test_sign_out_of_an_sso_session_also_ends_it_at_the_provider(
    sso_env: None, users: dict[str, User], engine: Engine
) -> None:
    _set_email(engine, users["recruiter"], "recruiter@acme.example")
    at = app_as(None)
    at.user = _signed_in_at_provider("recruiter@acme.example")
    at.run()
    assert at.title[0].value.startswith("Good")
    at.sidebar.button(key="sign_out").click().run()
    assert not at.exception
    assert at.user == {"is_logged_in": False}  # st.logout() ran
    at.run()
    assert "Sign in" in texts(at)
    assert not at.sidebar.button
