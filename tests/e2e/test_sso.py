"""Single sign-on in the browser: `crm serve` with CRM_OIDC_* pointing at a real (mock)
OpenID Connect provider on loopback, and Chromium clicking "Sign in with Acme ID"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from crm import auth, db
from tests.e2e.conftest import SETTLED, Server, crm_server, settle
from tests.e2e.test_smoke import MENU
from tests.oidc_server import MockOidcProvider

pytestmark = pytest.mark.e2e

PROVIDER_NAME = "Acme ID"
USERS = {  # username: (role, email)
    "ada": ("admin", "ada@acme.example"),
    "rita": ("recruiter", "Rita.Recruiter@acme.example"),
    "gone": ("recruiter", "gone@acme.example"),
}
NAV = "[data-testid=stSidebarNav]"
IDENTITY_COOKIE = "_streamlit_user"


@pytest.fixture(scope="module")
def provider() -> Iterator[MockOidcProvider]:
    with MockOidcProvider() as running:
        yield running


@pytest.fixture(scope="module")
def sso_server(
    tmp_path_factory: pytest.TempPathFactory, provider: MockOidcProvider
) -> Iterator[Server]:
    """The real server with single sign-on through `provider`, and three users."""
    folder = tmp_path_factory.mktemp("e2e-sso")
    # Part of the settings comes from .streamlit/secrets.toml in the folder `crm serve`
    # starts from, as an operator may keep the client secret.
    (folder / ".streamlit").mkdir()
    (folder / ".streamlit" / "secrets.toml").write_text(
        f'CRM_OIDC_CLIENT_SECRET = "{provider.client_secret}"\nCRM_OIDC_NAME = "{PROVIDER_NAME}"\n'
    )

    def add_users(server: Server) -> None:
        for username, (role, email) in USERS.items():
            server.crm_ok(
                "user", "add", username, "--role", role, "--email", email,
                "--display-name", username.title() + " Example",
                stdin="a-long-password-1\n",
            )  # fmt: skip
        engine = db.create_engine_for(server.env["CRM_DATABASE_URL"])
        admin = auth.find_user(engine, "ada")
        gone = auth.find_user(engine, "gone")
        auth.set_active(engine, actor=admin, user_id=gone.id, active=False)
        engine.dispose()

    # From the folder holding that secrets file, as an operator would start it; the
    # redirect URI is CRM_PUBLIC_URL/oauth2callback.
    with crm_server(
        folder,
        add_users,
        cwd=folder,
        CRM_WORKER="off",
        CRM_OIDC_METADATA_URL=provider.metadata_url,
        CRM_OIDC_CLIENT_ID=provider.client_id,
    ) as running:
        yield running


def _sign_in_with_the_provider(page: object, server: Server) -> None:
    page.goto(server.url)
    settle(page)
    page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()


def _diagnostics(provider: MockOidcProvider, server: Server) -> str:
    return f"provider errors: {provider.errors}\nserver log:\n{server.log.read_text()[-3000:]}"


def test_sign_in_with_the_provider_then_sign_out_ends_the_sso_session(
    sso_server: Server, provider: MockOidcProvider, browser
) -> None:
    provider.identity = {"email": "rita.recruiter@ACME.example", "email_verified": True}
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    _sign_in_with_the_provider(page, sso_server)
    try:
        page.wait_for_selector(NAV, timeout=60_000)
    except Exception as error:
        raise AssertionError(_diagnostics(provider, sso_server)) from error
    settle(page)
    # The users table decides who this is and what they may open: Rita, a recruiter.
    expect(page.locator("[data-testid=stSidebar]")).to_contain_text(
        "Signed in as Rita Example · recruiter"
    )
    nav = page.locator(NAV)
    links = [text.strip().splitlines()[-1] for text in nav.locator("a").all_inner_texts()]
    assert links == MENU  # a recruiter's menu: no Settings
    assert page.locator("h1").first.inner_text().startswith("Good")
    assert provider.authorizations[-1]["code_challenge_method"] == "S256"
    assert provider.errors == []
    assert any(cookie["name"] == IDENTITY_COOKIE for cookie in context.cookies())

    # Signing out ends the provider's session too (its end-session endpoint) and clears
    # Streamlit's identity cookie; a later visit asks again instead of signing back in.
    logouts_before = len(provider.logouts)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}")).to_be_visible(
        timeout=60_000
    )
    settle(page)
    assert len(provider.logouts) == logouts_before + 1
    assert provider.logouts[-1]["id_token_hint"]
    assert provider.logouts[-1]["post_logout_redirect_uri"] == f"{sso_server.url}/oauth2callback"
    assert not any(cookie["name"] == IDENTITY_COOKIE for cookie in context.cookies())
    page.goto(f"{sso_server.url}/candidates")
    page.wait_for_selector(SETTLED, timeout=60_000)
    settle(page)
    expect(page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}")).to_be_visible()
    assert page.locator(NAV).count() == 0
    context.close()


@pytest.mark.parametrize(
    "identity, sentence",
    [
        (
            {"email": "stranger@acme.example", "email_verified": True},
            "No Candidate CRM user has the email address stranger@acme.example;",
        ),
        (
            {"email": "gone@acme.example", "email_verified": True},
            "The Candidate CRM user with the email address gone@acme.example is deactivated;",
        ),
        (
            {"email": "ada@acme.example", "email_verified": False},
            "The sign-in provider has not said that it verified the email address ada@acme",
        ),
    ],
)
def test_an_identity_without_an_active_user_is_refused_with_one_sentence(
    sso_server: Server, provider: MockOidcProvider, browser, identity: dict, sentence: str
) -> None:
    provider.identity = identity
    context = browser.new_context()
    page = context.new_page()
    _sign_in_with_the_provider(page, sso_server)
    try:
        expect(page.get_by_text(sentence)).to_be_visible(timeout=60_000)
    except AssertionError as error:
        raise AssertionError(_diagnostics(provider, sso_server)) from error
    settle(page)
    assert page.locator(NAV).count() == 0
    assert page.get_by_label("Username").is_visible()  # the password form stays
    # "Sign out of Acme ID" leaves the refused account, back to a clean sign-in screen.
    page.get_by_role("button", name=f"Sign out of {PROVIDER_NAME}").click()
    expect(page.get_by_text(sentence)).to_have_count(0, timeout=60_000)
    settle(page)
    assert not any(cookie["name"] == IDENTITY_COOKIE for cookie in context.cookies())
    context.close()
