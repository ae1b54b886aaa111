"""Settings: environment first, then .streamlit/secrets.toml; the generated secret key."""

from __future__ import annotations

import os
import re
import stat
import threading
import time
from pathlib import Path

import pytest

from crm import config
from crm.errors import ConfigError
from tests.conftest import PROJECT_ROOT, at_once


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("CRM_") and not name.startswith("CRM_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    config.reset()  # the secrets file of an earlier test's folder is not this one's
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
    assert path.read_text(encoding="utf-8") == first + "\n"  # complete, one line
    assert stat.S_IMODE((clean_env / "data").stat().st_mode) == 0o700
    assert [p.name for p in (clean_env / "data").iterdir()] == [config.SECRET_FILE_NAME]
    assert config.secret_key() == first


def test_a_first_start_by_many_processes_at_once_gives_them_one_key(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each writer is slowed between creating its file and writing the key (as a crash or a
    full disk would leave it): nobody may see the half-made file, and everyone ends up with
    the one key in the file."""
    real_fdopen = os.fdopen

    def slow_fdopen(fd: int, mode: str = "r", *args: object, **kwargs: object):
        if "w" in mode:
            time.sleep(0.2)
        return real_fdopen(fd, mode, *args, **kwargs)

    monkeypatch.setattr(config.os, "fdopen", slow_fdopen)
    start = threading.Barrier(6)
    keys: list[str] = []

    def first_start() -> None:
        start.wait()
        keys.append(config.secret_key())

    assert at_once(first_start, 6) == []
    path = clean_env / "data" / config.SECRET_FILE_NAME
    assert len(set(keys)) == 1 and len(keys[0]) >= 32
    assert path.read_text(encoding="utf-8") == keys[0] + "\n"
    assert [p.name for p in (clean_env / "data").iterdir()] == [config.SECRET_FILE_NAME]


@pytest.mark.parametrize("content", ["", "\n", "abc", "abc\n", "x" * 15 + "\n"])
def test_an_empty_or_short_key_file_is_refused_not_replaced(clean_env: Path, content: str) -> None:
    folder = clean_env / "data"
    folder.mkdir()
    path = folder / config.SECRET_FILE_NAME
    path.write_text(content, encoding="utf-8")
    path.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        config.secret_key()
    assert str(caught.value) == (
        "The secret key file data/secret_key is empty or shorter than 16 characters; delete it to "
        "have a new one generated, or set CRM_SECRET_KEY."
    )
    assert path.read_text(encoding="utf-8") == content  # never silently regenerated


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644, 0o666])
def test_a_key_file_other_users_can_read_or_change_is_refused(clean_env: Path, mode: int) -> None:
    folder = clean_env / "data"
    folder.mkdir()
    path = folder / config.SECRET_FILE_NAME
    path.write_text("k" * 64 + "\n", encoding="utf-8")
    path.chmod(mode)
    with pytest.raises(ConfigError) as caught:
        config.secret_key()
    assert str(caught.value) == (
        "The secret key file data/secret_key can be read or changed by other users on this "
        "machine; run chmod 600 data/secret_key."
    )
    path.chmod(0o600)
    assert config.secret_key() == "k" * 64


def test_an_unreadable_key_file_is_refused(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = clean_env / "data"
    folder.mkdir()
    path = folder / config.SECRET_FILE_NAME
    path.write_text("k" * 64 + "\n", encoding="utf-8")
    path.chmod(0o000)
    if os.geteuid() == 0:  # root reads anything: refuse the open as the kernel would
        real_open = os.open

        def refusing_open(name: object, flags: int, *args: object) -> int:
            if Path(str(name)).resolve() == path:
                raise PermissionError(13, "Permission denied", str(name))
            return real_open(name, flags, *args)

        monkeypatch.setattr(config.os, "open", refusing_open)
    try:
        with pytest.raises(ConfigError) as caught:
            config.secret_key()
    finally:
        path.chmod(0o600)
    assert str(caught.value) == (
        "The secret key file data/secret_key cannot be read (Permission denied); run chmod 600 "
        "data/secret_key as its owner, or set CRM_SECRET_KEY."
    )
    assert path.read_text(encoding="utf-8") == "k" * 64 + "\n"


@pytest.mark.parametrize("short", ["short", "x" * 15, " " * 20 + "abc"])
def test_a_short_configured_secret_key_is_refused_from_the_environment_or_secrets_file(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, short: str
) -> None:
    monkeypatch.setenv("CRM_SECRET_KEY", short)
    with pytest.raises(ConfigError, match="^CRM_SECRET_KEY must be at least 16 characters long"):
        config.secret_key()
    monkeypatch.delenv("CRM_SECRET_KEY")
    (clean_env / ".streamlit").mkdir()
    (clean_env / ".streamlit" / "secrets.toml").write_text(f'CRM_SECRET_KEY = "{short}"\n')
    with pytest.raises(ConfigError, match="^CRM_SECRET_KEY must be at least 16 characters long"):
        config.secret_key()
    assert not (clean_env / "data").exists()  # no key file made behind its back


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
