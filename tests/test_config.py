"""Settings: environment first, then .streamlit/secrets.toml; the generated secret key."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from crm import config
from crm.errors import ConfigError
from tests.conftest import PROJECT_ROOT


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("CRM_") and not name.startswith("CRM_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults(clean_env: Path) -> None:
    settings = config.load_settings()
    assert settings.database_url == "sqlite:///data/crm.db"
    assert settings.public_url == "http://localhost:8501"
    assert settings.smtp is None and not settings.smtp_configured
    assert settings.worker_enabled


def test_environment_wins_over_secrets_file(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".streamlit").mkdir()
    (clean_env / ".streamlit" / "secrets.toml").write_text(
        'CRM_PUBLIC_URL = "https://from-file.example"\nCRM_SMTP_HOST = "smtp.example"\n'
    )
    assert config.load_settings().public_url == "https://from-file.example"
    assert config.load_settings().smtp.port == 587  # starttls default
    monkeypatch.setenv("CRM_PUBLIC_URL", "https://from-env.example/")
    assert config.load_settings().public_url == "https://from-env.example"


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("CRM_SEND_RATE", "fast", "CRM_SEND_RATE must be a number"),
        ("CRM_WORKER", "maybe", "CRM_WORKER must be on or off"),
        ("CRM_SMTP_SECURITY", "tls1", "CRM_SMTP_SECURITY must be none, starttls or ssl"),
        ("CRM_TIMEZONE", "Mars/Olympus", "CRM_TIMEZONE must be a timezone name"),
    ],
)
def test_bad_values_get_one_sentence(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    if name == "CRM_SMTP_SECURITY":
        monkeypatch.setenv("CRM_SMTP_HOST", "smtp.example")
    with pytest.raises(ConfigError, match=message):
        config.load_settings()


def test_secret_key_is_generated_once_with_private_permissions(clean_env: Path) -> None:
    first = config.secret_key()
    assert len(first) >= 32
    path = clean_env / "data" / config.SECRET_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.secret_key() == first


def test_configured_secret_key_is_used_and_checked(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        config.secret_key()
    monkeypatch.setenv("CRM_SECRET_KEY", "x" * 40)
    assert config.secret_key() == "x" * 40
    assert not (clean_env / "data").exists()


def test_missing_secret_with_unwritable_data_folder(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = clean_env / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("CRM_DATA_DIR", str(blocker))
    with pytest.raises(ConfigError, match="set CRM_SECRET_KEY"):
        config.secret_key()


def test_single_sign_on_is_off_until_configured_then_read_from_file_or_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config.sso_settings() is None
    (clean_env / ".streamlit").mkdir()
    (clean_env / ".streamlit" / "secrets.toml").write_text(
        'CRM_OIDC_METADATA_URL = "https://id.acme.example/.well-known/openid-configuration"\n'
        'CRM_OIDC_CLIENT_ID = "crm"\nCRM_OIDC_CLIENT_SECRET = "from-file"\n'
    )
    monkeypatch.setenv("CRM_PUBLIC_URL", "https://crm.acme.example/")
    sso = config.sso_settings()
    assert sso.name == "SSO" and sso.client_secret == "from-file"
    assert sso.redirect_uri == "https://crm.acme.example/oauth2callback"
    monkeypatch.setenv("CRM_OIDC_NAME", "Acme ID")
    monkeypatch.setenv("CRM_OIDC_CLIENT_SECRET", "from-env")
    assert (config.sso_settings().name, config.sso_settings().client_secret) == (
        "Acme ID",
        "from-env",
    )


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"CRM_OIDC_METADATA_URL": "https://id.acme.example/.well-known/openid-configuration"},
            "Single sign-on also needs CRM_OIDC_CLIENT_ID and CRM_OIDC_CLIENT_SECRET",
        ),
        (
            {"CRM_OIDC_CLIENT_ID": "crm", "CRM_OIDC_CLIENT_SECRET": "s"},
            "Single sign-on also needs CRM_OIDC_METADATA_URL",
        ),
        (
            {
                "CRM_OIDC_METADATA_URL": "id.acme.example",
                "CRM_OIDC_CLIENT_ID": "crm",
                "CRM_OIDC_CLIENT_SECRET": "s",
            },
            "CRM_OIDC_METADATA_URL must be the provider's https:// address",
        ),
        (
            {
                "CRM_OIDC_METADATA_URL": "https://id.acme.example/.well-known/openid-configuration",
                "CRM_OIDC_CLIENT_ID": "crm",
                "CRM_OIDC_CLIENT_SECRET": "s",
                "CRM_PUBLIC_URL": "crm.acme.example",
            },
            "Single sign-on needs CRM_PUBLIC_URL to be the address",
        ),
    ],
)
def test_incomplete_single_sign_on_gets_one_sentence(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], message: str
) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        config.sso_settings()


def test_readme_documents_every_setting() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(CRM_[A-Z_]+)`", readme))
    missing = set(config.SETTINGS) - documented
    assert not missing, f"README.md does not document {sorted(missing)}"
