"""A real SMTP server for tests, with knobs to inject delivery faults.

``FaultySmtpServer`` runs aiosmtpd in a background thread on 127.0.0.1 and a free port.
Point ``smtplib.SMTP`` or ``yagmail.SMTP(..., host=server.host, port=server.port,
smtp_starttls=False, smtp_ssl=False)`` at it. Note that yagmail 0.16 connects lazily: its
``.smtp`` attribute is ``None`` until ``.login()`` (or ``.send()``) is called; ``login()``
opens the connection and, unless ``smtp_skip_login=True``, authenticates.

What each fault looks like to a ``smtplib.SMTP`` client calling ``send_message``:

* ``drop_before_data_every = N``: every Nth DATA command is answered by closing the
  connection -> ``smtplib.SMTPServerDisconnected("Connection unexpectedly closed")``
  raised from ``data()``; nothing is recorded (safe to retry).
* ``drop_after_data_times = N``: the next N messages are read in full and recorded with
  ``acknowledged=False``, then the connection is closed instead of the final 250 ->
  also ``smtplib.SMTPServerDisconnected("Connection unexpectedly closed")``, raised from
  ``data()`` after the content was sent (the message may have been delivered).
* ``rcpt_replies``: the given reply at RCPT TO. If every recipient is refused,
  ``send_message`` raises ``smtplib.SMTPRecipientsRefused`` whose ``.recipients`` maps
  each address to ``(code, message_bytes)``; if only some are refused it does NOT
  raise, it delivers to the others and returns that same mapping for the refused ones.
* ``auth``: wrong credentials -> ``smtplib.SMTPAuthenticationError`` (535); sending
  without logging in -> ``smtplib.SMTPSenderRefused`` (530) from MAIL FROM. When
  ``auth`` is ``None`` no AUTH is advertised, so ``login()`` raises
  ``smtplib.SMTPNotSupportedError`` (use ``smtp_skip_login=True`` with yagmail).

After either disconnect the ``smtplib.SMTP`` object is closed; open a new connection
(``yagmail``: call ``.login()`` again) to continue.
"""

from __future__ import annotations

import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

HOST = "127.0.0.1"
_SERVER_NAME = "faulty-smtp.test"  # avoids a socket.getfqdn() lookup per connection
AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"


@dataclass
class ReceivedMessage:
    """A message whose whole content reached the server."""

    mail_from: str
    rcpt_tos: list[str]  # accepted recipients only
    raw: bytes  # message content as received (CRLF line ends, dot-unstuffed)
    message: EmailMessage  # parsed with policy=email.policy.default
    acknowledged: bool  # False when the final 250 was withheld (drop_after_data)


class _Handler:
    """aiosmtpd handler; the fault decisions live on the FaultySmtpServer."""

    def __init__(self, owner: FaultySmtpServer) -> None:
        self.owner = owner

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.owner._rcpt_reply(address)
        if reply is None or reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply or "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        acknowledged = not self.owner._take_drop_after_data()
        raw = bytes(envelope.original_content)
        # `raw` keeps the wire form (CRLF); parse with LF line ends so that
        # get_content() returns text as the sender built it.
        parsed = BytesParser(policy=email.policy.default).parsebytes(raw.replace(b"\r\n", b"\n"))
        assert isinstance(parsed, EmailMessage)
        self.owner.received.append(
            ReceivedMessage(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                raw=raw,
                message=parsed,
                acknowledged=acknowledged,
            )
        )
        if not acknowledged:
            assert isinstance(server, _FaultySMTP)
            server.drop_next_reply = True
        return "250 2.0.0 OK: queued"


class _FaultySMTP(SMTP):
    """One instance per connection. Auth settings are read live from the owner."""

    def __init__(self, handler: _Handler, owner: FaultySmtpServer, **kwargs: Any) -> None:
        # Set before super().__init__(), which reads the auth properties below.
        self.owner = owner
        self.drop_next_reply = False
        super().__init__(handler, authenticator=self._check_credentials, **kwargs)

    # aiosmtpd keeps these as plain attributes set once in __init__; make them follow
    # FaultySmtpServer.auth instead so the knob can change while the server runs.
    @property
    def _auth_required(self) -> bool:  # type: ignore[override]
        return self.owner.auth is not None

    @_auth_required.setter
    def _auth_required(self, value: bool) -> None:
        pass

    @property
    def _auth_require_tls(self) -> bool:  # type: ignore[override]
        # AUTH is offered without TLS only when credentials are configured.
        return self.owner.auth is None

    @_auth_require_tls.setter
    def _auth_require_tls(self, value: bool) -> None:
        pass

    def _check_credentials(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        expected = self.owner.auth
        ok = (
            expected is not None
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == expected[0].encode()
            and auth_data.password == expected[1].encode()
        )
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False, message=AUTH_INVALID)

    async def smtp_DATA(self, arg: str) -> None:
        assert self.session is not None
        starts_message = (
            bool(self.session.host_name)
            and not (self._auth_required and not self.session.authenticated)
            and self.envelope is not None
            and bool(self.envelope.rcpt_tos)
            and not arg
        )
        if starts_message and self.owner._take_drop_before_data():
            # Hang up without a reply, before the 354 and before any content.
            self._hang_up()
            return
        await super().smtp_DATA(arg)

    async def push(self, status: Any) -> None:
        if self.drop_next_reply:
            # The final reply to DATA (the message has been recorded): withhold it.
            self.drop_next_reply = False
            self._hang_up()
            return
        await super().push(status)

    def _hang_up(self) -> None:
        # connection_lost() then cancels this connection's task; other connections and
        # the listening socket are unaffected.
        if self.transport is not None:
            self.transport.close()


class _Controller(Controller):
    """Serves on an already bound socket, so the free port is known without a race."""

    def __init__(self, owner: FaultySmtpServer, sock: socket.socket) -> None:
        self.owner = owner
        self.sock = sock
        super().__init__(
            _Handler(owner),
            hostname=HOST,
            port=sock.getsockname()[1],
            ready_timeout=5.0,
        )

    def factory(self) -> SMTP:
        with self.owner._lock:
            self.owner.connections += 1
        return _FaultySMTP(self.handler, self.owner, hostname=_SERVER_NAME, enable_SMTPUTF8=True)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self.sock)


class FaultySmtpServer:
    """Context manager; starts on 127.0.0.1 and a free port, stops on exit.

    Knobs can be changed at any time while it runs:

    * ``drop_before_data_every``: every Nth DATA command that would start a message
      (counted across connections, 1-based, from when the knob was last set or
      ``reset()``) gets the connection closed without a reply; nothing is recorded.
    * ``drop_after_data_times``: the next N messages are recorded (``acknowledged=False``)
      and the connection is then closed instead of sending the final 250.
    * ``rcpt_replies``: lower-cased recipient -> full reply line for RCPT TO, e.g.
      ``"451 4.7.1 Try again later"``; other recipients get 250.
    * ``auth``: ``(user, password)`` to require AUTH PLAIN/LOGIN (offered without TLS);
      ``None`` for no authentication (AUTH not offered).
    """

    def __init__(self, *, auth: tuple[str, str] | None = None) -> None:
        self.host = HOST
        self.port = 0
        self._initial_auth = auth
        self._lock = threading.Lock()
        self._controller: _Controller | None = None
        self.received: list[ReceivedMessage] = []
        self.connections = 0
        self.data_commands = 0  # DATA commands that would start a message
        self._drop_before_data_every: int | None = None
        self._drop_before_count = 0
        self.drop_after_data_times = 0
        self.rcpt_replies: dict[str, str] = {}
        self.auth = auth

    # -- knobs -----------------------------------------------------------------------

    @property
    def drop_before_data_every(self) -> int | None:
        return self._drop_before_data_every

    @drop_before_data_every.setter
    def drop_before_data_every(self, value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError("drop_before_data_every must be a positive integer or None")
        with self._lock:
            self._drop_before_data_every = value
            self._drop_before_count = 0

    def reset(self) -> None:
        """Clear received messages and counters; knobs back to defaults (auth to the
        value given to the constructor)."""
        with self._lock:
            self.received.clear()
            self.connections = 0
            self.data_commands = 0
            self._drop_before_data_every = None
            self._drop_before_count = 0
            self.drop_after_data_times = 0
            self.rcpt_replies = {}
            self.auth = self._initial_auth

    def messages_to(self, address: str) -> list[ReceivedMessage]:
        wanted = address.lower()
        return [m for m in list(self.received) if wanted in (r.lower() for r in m.rcpt_tos)]

    # -- decisions, called from the server thread ------------------------------------

    def _rcpt_reply(self, address: str) -> str | None:
        replies = {key.lower(): value for key, value in dict(self.rcpt_replies).items()}
        return replies.get(address.lower())

    def _take_drop_before_data(self) -> bool:
        with self._lock:
            self.data_commands += 1
            every = self._drop_before_data_every
            if every is None:
                return False
            self._drop_before_count += 1
            return self._drop_before_count % every == 0

    def _take_drop_after_data(self) -> bool:
        with self._lock:
            if self.drop_after_data_times > 0:
                self.drop_after_data_times -= 1
                return True
            return False

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FaultySmtpServer:
        if self._controller is not None:
            raise RuntimeError("FaultySmtpServer already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((HOST, 0))
            controller = _Controller(self, sock)
            self.port = controller.port
            controller.start()
        except BaseException:
            sock.close()
            raise
        self._controller = controller
        # Controller.start() opens one connection to check the server answers.
        with self._lock:
            self.connections = 0
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> FaultySmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture(name="smtp_server")
def smtp_server() -> Iterator[FaultySmtpServer]:
    """A started FaultySmtpServer without authentication, stopped after the test.

    The explicit name lets test modules import it under an alias, which keeps ruff
    from reporting F811 where the fixture is used as an argument:
    ``from tests.smtp_server import smtp_server as smtp_server_fixture  # noqa: F401``
    """
    with FaultySmtpServer() as server:
        yield server
