"""Settings from the environment first, then .streamlit/secrets.toml, then defaults.

Every setting the app reads is listed in SETTINGS so the docs test can check that
README.md documents each one.

The settings are read once per process: the secrets file once (again only if it is
rewritten), and load_settings once per set of CRM_* environment values (the environment
does not change in a running app; a test that changes it gets fresh settings). reset()
forgets what was read, for tests.
"""

from __future__ import annotations

import errno
import functools
import os
import secrets
import stat
import tempfile
import tomllib
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///data/crm.db"
SECRET_FILE_NAME = "secret_key"
SECRETS_FILE = Path(".streamlit") / "secrets.toml"

# name -> default (None: unset)
SETTINGS: dict[str, str | None] = {
    "CRM_DATABASE_URL": DEFAULT_DATABASE_URL,
    "CRM_SECRET_KEY": None,
    "CRM_PUBLIC_URL": "http://localhost:8501",
    "CRM_DATA_DIR": "data",
    "CRM_SMTP_HOST": None,
    "CRM_SMTP_PORT": None,
    "CRM_SMTP_USER": None,
    "CRM_SMTP_PASSWORD": None,
    "CRM_SMTP_SECURITY": "starttls",
    "CRM_FROM": None,
    "CRM_SEND_RATE": "10",
    "CRM_RETRY_BASE": "60",
    "CRM_WORKER": "on",
    "CRM_TIMEZONE": "UTC",
    "CRM_IMAP_HOST": None,
    "CRM_IMAP_PORT": None,
    "CRM_IMAP_USER": None,
    "CRM_IMAP_PASSWORD": None,
    "CRM_IMAP_SECURITY": None,
    "CRM_OIDC_METADATA_URL": None,
    "CRM_OIDC_CLIENT_ID": None,
    "CRM_OIDC_CLIENT_SECRET": None,
    "CRM_OIDC_NAME": "SSO",
    "CRM_OIDC_TRUSTED_ISSUER": None,
}

# Streamlit's OIDC callback path (st.login): the redirect URI registered with the provider.
OIDC_CALLBACK_PATH = "/oauth2callback"


def _secrets_file_values() -> dict[str, str]:
    """Top-level CRM_* keys of .streamlit/secrets.toml in the working directory, if any."""
    folder = Path.cwd()
    return _secrets_file_in(folder, _secrets_file_stamp(folder))


def _secrets_file_stamp(folder: Path) -> tuple[int, int] | None:
    """When the secrets file was last written, and its size: a changed file is read again."""
    try:
        found = (folder / SECRETS_FILE).stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


@functools.cache
def _secrets_file_in(folder: Path, stamp: tuple[int, int] | None) -> dict[str, str]:
    path = folder / SECRETS_FILE
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f".streamlit/secrets.toml cannot be read: {error}.") from None
    return {key: str(value) for key, value in data.items() if key.startswith("CRM_")}


def raw_setting(name: str) -> str | None:
    """One setting's text: environment, then secrets.toml, then the default."""
    if name not in SETTINGS:
        raise KeyError(name)
    value = os.environ.get(name)
    if value is None or value == "":
        value = _secrets_file_values().get(name)
    if value is None or value == "":
        value = SETTINGS[name]
    return value


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str
    password: str
    security: str
    sender: str


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    user: str
    password: str
    security: str  # "none", "starttls" or "ssl"
    folder: str = "INBOX"


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    public_url: str
    send_rate: float
    retry_base_seconds: float
    worker_enabled: bool
    smtp: SmtpSettings | None
    timezone: str = "UTC"
    imap: ImapSettings | None = None

    @property
    def smtp_configured(self) -> bool:
        return self.smtp is not None

    @property
    def imap_configured(self) -> bool:
        return self.imap is not None


def _number(name: str, *, minimum: float) -> float:
    text = raw_setting(name) or ""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {text!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, not {text}.")
    return value


def _mail_server(service: str, security: str, ports: dict[str, str]) -> dict[str, Any] | None:
    """What SMTP and IMAP settings share, from CRM_<service>_HOST, _SECURITY (default
    `security`), _PORT (default by the security), _USER and _PASSWORD; None without a host."""
    host = raw_setting(f"CRM_{service}_HOST")
    if not host:
        return None
    security = (raw_setting(f"CRM_{service}_SECURITY") or security).lower()
    if security not in ports:
        raise ConfigError(
            f"CRM_{service}_SECURITY must be none, starttls or ssl, not {security!r}."
        )
    port_text = raw_setting(f"CRM_{service}_PORT") or ports[security]
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"CRM_{service}_PORT must be a port number, not {port_text!r}.") from None
    return {
        "host": host,
        "port": port,
        "user": raw_setting(f"CRM_{service}_USER") or "",
        "password": raw_setting(f"CRM_{service}_PASSWORD") or "",
        "security": security,
    }


def _smtp_settings() -> SmtpSettings | None:
    server = _mail_server("SMTP", "starttls", {"none": "25", "starttls": "587", "ssl": "465"})
    if server is None:
        return None
    return SmtpSettings(**server, sender=raw_setting("CRM_FROM") or "")


def _imap_settings() -> ImapSettings | None:
    server = _mail_server("IMAP", "ssl", {"none": "143", "starttls": "143", "ssl": "993"})
    if server is None:
        return None
    if not 0 < server["port"] < 65536:  # only a port given can be out of range
        port_text = raw_setting("CRM_IMAP_PORT")
        raise ConfigError(f"CRM_IMAP_PORT must be a port number, not {port_text!r}.")
    return ImapSettings(**server)


@dataclass(frozen=True)
class SsoSettings:
    """Single sign-on through an OpenID Connect provider (Streamlit's st.login)."""

    metadata_url: str  # the provider's /.well-known/openid-configuration
    client_id: str
    client_secret: str
    name: str  # shown on the button: "Sign in with NAME"
    redirect_uri: str  # CRM_PUBLIC_URL + /oauth2callback
    # The one issuer (the ID token's iss) whose email claims are taken as verified even
    # without email_verified: only for a provider that verifies every address itself.
    trusted_issuer: str | None = None


def _is_web_url(text: str) -> bool:
    scheme, _, rest = text.partition("://")
    return scheme.lower() in {"http", "https"} and bool(rest) and " " not in text


def sso_settings() -> SsoSettings | None:
    """The single sign-on settings, or None when CRM_OIDC_* is not set (password only)."""
    required = ("CRM_OIDC_METADATA_URL", "CRM_OIDC_CLIENT_ID", "CRM_OIDC_CLIENT_SECRET")
    values = {name: (raw_setting(name) or "").strip() for name in required}
    if not any(values.values()):
        return None
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigError(
            f"Single sign-on also needs {' and '.join(missing)}; set "
            f"{'them' if len(missing) > 1 else 'it'}, or unset every CRM_OIDC_* setting to "
            "sign in with passwords only."
        )
    metadata_url = values["CRM_OIDC_METADATA_URL"]
    if not _is_web_url(metadata_url):
        raise ConfigError(
            "CRM_OIDC_METADATA_URL must be the provider's https:// address of "
            f"/.well-known/openid-configuration, not {metadata_url!r}."
        )
    public_url = (raw_setting("CRM_PUBLIC_URL") or "").strip().rstrip("/")
    if not _is_web_url(public_url):
        raise ConfigError(
            "Single sign-on needs CRM_PUBLIC_URL to be the address people open Candidate CRM "
            f"at, such as https://crm.example.com, not {public_url!r}."
        )
    return SsoSettings(
        metadata_url=metadata_url,
        client_id=values["CRM_OIDC_CLIENT_ID"],
        client_secret=values["CRM_OIDC_CLIENT_SECRET"],
        name=(raw_setting("CRM_OIDC_NAME") or "SSO").strip() or "SSO",
        redirect_uri=public_url + OIDC_CALLBACK_PATH,
        trusted_issuer=(raw_setting("CRM_OIDC_TRUSTED_ISSUER") or "").strip() or None,
    )


def load_settings() -> Settings:
    """The settings, read once per process (see the module docstring)."""
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("CRM_")))
    folder = Path.cwd()
    return _settings_for(environment, folder, _secrets_file_stamp(folder))


def reset() -> None:
    """Forget the settings read so far: the next load_settings reads them again."""
    _secrets_file_in.cache_clear()
    _settings_for.cache_clear()


@functools.cache
def _settings_for(
    environment: tuple[tuple[str, str], ...], folder: Path, secrets: tuple[int, int] | None
) -> Settings:
    """Every setting, for this environment, working folder and secrets file (the key)."""
    worker = (raw_setting("CRM_WORKER") or "on").lower()
    if worker not in {"on", "off"}:
        raise ConfigError(f"CRM_WORKER must be on or off, not {worker!r}.")
    timezone = raw_setting("CRM_TIMEZONE") or "UTC"
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"CRM_TIMEZONE must be a timezone name such as Europe/London, not {timezone!r}."
        ) from None
    return Settings(
        timezone=timezone,
        database_url=raw_setting("CRM_DATABASE_URL") or DEFAULT_DATABASE_URL,
        data_dir=Path(raw_setting("CRM_DATA_DIR") or "data"),
        public_url=(raw_setting("CRM_PUBLIC_URL") or "").rstrip("/"),
        send_rate=_number("CRM_SEND_RATE", minimum=0.01),
        retry_base_seconds=_number("CRM_RETRY_BASE", minimum=0),
        worker_enabled=worker == "on",
        smtp=_smtp_settings(),
        imap=_imap_settings(),
    )


MIN_SECRET_LENGTH = 16


def _read_key_file(path: Path) -> str:
    """The key in an existing key file, refused with one sentence if it is unsafe or unusable.

    A bad file is never replaced by a new key: that would silently sign everyone out and
    break every unsubscribe link already sent.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as error:
        raise ConfigError(
            f"The secret key file {path} cannot be read ({error.strerror}); "
            f"run chmod 600 {path} as its owner, or set CRM_SECRET_KEY."
        ) from None
    try:
        # fstat the file we opened, so the mode checked is the mode of what is read.
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise ConfigError(
                f"The secret key file {path} is not a file; remove it to have a key "
                "generated, or set CRM_SECRET_KEY."
            )
        if status.st_mode & 0o077:
            raise ConfigError(
                f"The secret key file {path} can be read or changed by other users on this "
                f"machine; run chmod 600 {path}."
            )
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read()
    except OSError as error:
        raise ConfigError(
            f"The secret key file {path} cannot be read ({error.strerror}); "
            f"run chmod 600 {path} as its owner, or set CRM_SECRET_KEY."
        ) from None
    finally:
        os.close(fd)
    try:
        key = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        key = ""
    if len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"The secret key file {path} is empty or shorter than {MIN_SECRET_LENGTH} "
            "characters; delete it to have a new one generated, or set CRM_SECRET_KEY."
        )
    return key


def _write_key_file(data_dir: Path, path: Path) -> None:
    """Write a new key so it appears complete or not at all; the first writer wins."""
    key = secrets.token_urlsafe(48)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkstemp creates the file with mode 0600 in the same folder (so the link below
    # stays on one file system); it is filled and synced before it gets the real name.
    fd, temporary = tempfile.mkstemp(prefix=f".{SECRET_FILE_NAME}.", suffix=".tmp", dir=data_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link() never replaces: when two processes start at once, one link wins
            # and the other gets FileExistsError and reads the winner's key.
            os.link(temporary, path)
        except FileExistsError:
            return
        except OSError as error:
            if error.errno not in {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK}:
                raise
            # A file system without hard links: rename is still atomic, only the
            # first-writer-wins check is not (both processes then read the file back).
            if not path.exists():
                os.replace(temporary, path)
        _sync_folder(data_dir)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    """Make a new name in the folder survive a power cut (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def secret_key() -> str:
    """CRM_SECRET_KEY, or a key generated once into the data folder and reused after.

    Any key shorter than 16 characters, and a key file other users could read, is
    refused with one sentence saying what to fix.
    """
    configured = raw_setting("CRM_SECRET_KEY")
    if configured:
        if len(configured.strip()) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"CRM_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters long."
            )
        return configured
    data_dir = Path(raw_setting("CRM_DATA_DIR") or "data")
    path = data_dir / SECRET_FILE_NAME
    if not os.path.lexists(path):
        try:
            _write_key_file(data_dir, path)
        except OSError as error:
            raise ConfigError(
                f"No CRM_SECRET_KEY is set and the data folder {data_dir} is not writable "
                f"({error.strerror}); set CRM_SECRET_KEY or make {data_dir} writable."
            ) from None
    # Read back even after writing: whichever process won, everyone uses the file's key.
    return _read_key_file(path)
