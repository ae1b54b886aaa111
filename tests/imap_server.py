"""A real IMAP server for the tests: Debian's dovecot, started on loopback per test.

`DovecotServer` writes a configuration of its own into a temporary folder (base_dir,
state, logs, a passwd-file user and a maildir all live there; no syslog, no TLS,
plaintext login allowed on 127.0.0.1 only), runs `dovecot -F -c CONFIG` as a child
process, waits until it answers a login, and stops it afterwards. Messages go in with
IMAP APPEND, the way a mail client would put them there.

Run as root, dovecot's own processes use the packaged `dovecot`/`dovenull` users and
the mailbox belongs to `nobody`; run as anyone else, everything runs as that user.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

DOVECOT = shutil.which("dovecot") or next(
    (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)), None
)
NOT_INSTALLED = (
    "The mailbox tests need Debian's dovecot IMAP server, which is not installed: "
    "`make test` installs it (or run: apt-get install dovecot-imapd)."
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DovecotServer:
    """dovecot on 127.0.0.1 with one user; use as a context manager."""

    host = "127.0.0.1"
    folder = "INBOX"

    def __init__(self, *, user: str = "talent", start_timeout: float = 20.0) -> None:
        if DOVECOT is None:
            raise RuntimeError(NOT_INSTALLED)
        self.user = user
        self.password = secrets.token_urlsafe(12)
        self.port = free_port()
        self.start_timeout = start_timeout
        self.root = Path(tempfile.mkdtemp(prefix="crm-dovecot-"))
        self.maildir = self.root / "mail" / user
        self.log_path = self.root / "dovecot.log"
        self.process: subprocess.Popen[bytes] | None = None

    # --- life cycle ----------------------------------------------------------------------

    def _accounts(self) -> tuple[str, str, str, int, int]:
        """(internal user, internal group, login user, mail uid, mail gid) for dovecot."""
        if os.geteuid() != 0:
            me = pwd.getpwuid(os.geteuid()).pw_name
            group = grp.getgrgid(os.getegid()).gr_name
            return me, group, me, os.geteuid(), os.getegid()
        for name in ("dovecot", "dovenull"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                raise RuntimeError(
                    f"The system user {name!r} is missing; reinstall dovecot-core."
                ) from None
        nobody = pwd.getpwnam("nobody")
        try:
            gid = grp.getgrnam("nogroup").gr_gid
        except KeyError:
            gid = nobody.pw_gid
        return "dovecot", "dovecot", "dovenull", nobody.pw_uid, gid

    def _write_config(self) -> Path:
        internal, internal_group, login, uid, gid = self._accounts()
        self.root.chmod(0o755)  # dovecot's unprivileged processes must reach their sockets
        (self.root / "mail").mkdir()
        (self.root / "state").mkdir()
        passwd = self.root / "passwd"
        passwd.write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n", encoding="utf-8")
        passwd.chmod(0o644)
        if os.geteuid() == 0:
            os.chown(self.root / "mail", uid, gid)
        config = self.root / "dovecot.conf"
        config.write_text(
            f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = crm-test-{self.port}
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{self.root}/mail/%u
mail_privileged_group =
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    # no growing delay after the wrong-password test: the next test logs in at once
    mode = 0
  }}
}}
""",
            encoding="utf-8",
        )
        return config

    def start(self) -> DovecotServer:
        config = self._write_config()
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl+C in pytest does not reach it; stop() does
        )
        deadline = time.monotonic() + self.start_timeout
        last_error = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = (
                    self.process.stdout.read().decode(errors="replace")
                    if self.process.stdout
                    else ""
                )
                self.stop()
                raise RuntimeError(f"dovecot exited at start:\n{output}\n{self._log_tail()}")
            try:
                with self.client():
                    return self
            except (OSError, imaplib.IMAP4.error) as error:
                last_error = str(error)
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"dovecot did not answer on port {self.port} within {self.start_timeout:g}s "
            f"({last_error}).\n{self._log_tail()}"
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # dovecot's master stops its children
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process is not None and process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        except OSError:
            return "(no dovecot log)"

    # --- helpers for tests ---------------------------------------------------------------

    @contextlib.contextmanager
    def client(self):  # type: ignore[no-untyped-def]
        """A logged-in imaplib client."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            client.login(self.user, self.password)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def deliver(self, raw: bytes | str) -> None:
        """Put one raw message into INBOX, unread, as a delivery agent would."""
        data = raw.encode("utf-8") if isinstance(raw, str) else raw
        if not data.endswith(b"\n"):
            data += b"\r\n"
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        with self.client() as client:
            status, answer = client.append(self.folder, "", None, data)
            if status != "OK":
                raise RuntimeError(f"APPEND failed: {answer!r}")

    def flags(self) -> list[set[str]]:
        """Each message's flags and keywords, in mailbox order."""
        with self.client() as client:
            status, data = client.select(self.folder, readonly=True)
            if int(data[0]) == 0:
                return []
            status, data = client.fetch("1:*", "(FLAGS)")
            result = []
            for item in data or []:
                if not isinstance(item, bytes):
                    continue
                inside = item.split(b"FLAGS (", 1)[1].split(b")", 1)[0]
                result.append(set(inside.decode().split()))
            return result

    def set_flags(self, number: int, command: str, flags: str) -> None:
        """STORE on one message by its sequence number (e.g. "-FLAGS", "($CrmProcessed)")."""
        with self.client() as client:
            client.select(self.folder)
            status, answer = client.store(str(number), command, flags)
            if status != "OK":
                raise RuntimeError(f"STORE failed: {answer!r}")

    def empty(self) -> None:
        """Remove every message from INBOX (between tests sharing one server)."""
        with self.client() as client:
            status, data = client.select(self.folder)
            if int(data[0]):
                client.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
                client.expunge()

    def count(self) -> int:
        with self.client() as client:
            status, data = client.select(self.folder, readonly=True)
            return int(data[0])
