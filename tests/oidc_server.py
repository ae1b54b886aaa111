"""A real OpenID Connect provider for the tests, on a free loopback port.

`MockOidcProvider` is a small HTTP server (the standard library's, in a thread) that
speaks the authorization code flow the way a real provider does, enough for Streamlit's
st.login (Authlib) to accept it:

- `/.well-known/openid-configuration`: the discovery document (issuer, endpoints, RS256,
  PKCE with S256).
- `/authorize`: checks the client and the request, then, instead of a login page,
  redirects straight back to the redirect URI with a one-time code and the state, as the
  person in `provider.identity` (set it before each sign-in).
- `/token`: checks the client secret (Basic or form), the code, the redirect URI and the
  PKCE verifier; answers with an access token and an ID token signed RS256 by a key made
  for this server (iss, sub, aud, iat, exp, nonce, at_hash, and the person's claims).
- `/jwks`: the public key; `/userinfo`: the person's claims for a Bearer access token.
- `/logout`: the end-session endpoint; remembers each call (`provider.logouts`) and
  redirects to post_logout_redirect_uri.

Anything wrong gets a 400 with an OAuth error, and is kept in `provider.errors`, so a
test can see why a flow failed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    claims: dict[str, Any]


@dataclass
class MockOidcProvider:
    """An OIDC provider on 127.0.0.1; use as a context manager."""

    client_id: str = "crm-test-client"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    identity: dict[str, Any] = field(
        default_factory=lambda: {"email": "person@example.com", "email_verified": True}
    )
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    authorizations: list[dict[str, str]] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self._codes: dict[str, _Grant] = {}
        self._access_tokens: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- addresses ------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email", "name"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        return {"keys": [jwk]}

    # --- the flow -------------------------------------------------------------------

    def _claims_for_this_sign_in(self) -> dict[str, Any]:
        claims = dict(self.identity)
        email = str(claims.get("email", ""))
        # One account per address at this provider, whatever case it is typed in.
        claims.setdefault("sub", "sub-" + hashlib.sha256(email.lower().encode()).hexdigest()[:16])
        claims.setdefault("name", email.split("@")[0].title() or "Someone")
        return claims

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.authorizations.append(query)
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri.startswith("http"):
            return self._error("invalid_request", "unknown client or redirect_uri")
        if "openid" not in (query.get("scope") or "").split():
            return self._error("invalid_scope", "the openid scope is required")
        if query.get("response_type") != "code":
            return self._error("unsupported_response_type", "only code is supported")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                nonce=query.get("nonce"),
                code_challenge=query.get("code_challenge"),
                code_challenge_method=query.get("code_challenge_method"),
                claims=self._claims_for_this_sign_in(),
            )
        params = {"code": code}
        if "state" in query:
            params["state"] = query["state"]
        return 302, {"Location": _with_query(redirect_uri, params)}, b""

    def token(
        self, form: dict[str, str], authorization: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode("utf-8")
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id or client_secret != self.client_secret:
            return self._error("invalid_client", "wrong client id or secret", status=401)
        if form.get("grant_type") != "authorization_code":
            return self._error("unsupported_grant_type", "only authorization_code")
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # one use only
        if grant is None:
            return self._error("invalid_grant", "unknown or used code")
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._error("invalid_grant", "redirect_uri differs from /authorize")
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            if grant.code_challenge_method == "S256":
                expected = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
            else:
                expected = verifier
            if expected != grant.code_challenge:
                return self._error("invalid_grant", "PKCE verifier does not match")
        access_token = secrets.token_urlsafe(32)
        now = int(time.time())
        claims = {
            **grant.claims,
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 3600,
            # at_hash: the left half of SHA-256 of the access token (RS256)
            "at_hash": _b64url(hashlib.sha256(access_token.encode("ascii")).digest()[:16]),
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        with self._lock:
            self._access_tokens[access_token] = grant.claims
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "id_token": id_token,
            "scope": "openid email profile",
        }
        return (
            200,
            {"Content-Type": "application/json", "Cache-Control": "no-store"},
            (json.dumps(body).encode()),
        )

    def userinfo(self, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        token = (authorization or "").removeprefix("Bearer ").strip()
        with self._lock:
            claims = self._access_tokens.get(token)
        if claims is None:
            return self._error("invalid_token", "unknown access token", status=401)
        return 200, {"Content-Type": "application/json"}, json.dumps(claims).encode()

    def logout(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.logouts.append(query)
        target = query.get("post_logout_redirect_uri")
        if target:
            return 302, {"Location": target}, b""
        return 200, {"Content-Type": "text/plain"}, b"Signed out."

    def _error(
        self, error: str, description: str, *, status: int = 400
    ) -> tuple[int, dict[str, str], bytes]:
        self.errors.append(f"{error}: {description}")
        body = json.dumps({"error": error, "error_description": description}).encode()
        return status, {"Content-Type": "application/json"}, body

    # --- the HTTP server ------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest shows provider.errors when something fails

            def _answer(self, result: tuple[int, dict[str, str], bytes]) -> None:
                status, headers, body = result
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _query(self) -> dict[str, str]:
                parsed = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
                return {key: values[-1] for key, values in parsed.items()}

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                json_headers = {"Content-Type": "application/json"}
                if path == "/.well-known/openid-configuration":
                    self._answer((200, json_headers, json.dumps(provider.metadata()).encode()))
                elif path == "/jwks":
                    self._answer((200, json_headers, json.dumps(provider.jwks()).encode()))
                elif path == "/authorize":
                    self._answer(provider.authorize(self._query()))
                elif path == "/userinfo":
                    self._answer(provider.userinfo(self.headers.get("Authorization")))
                elif path == "/logout":
                    self._answer(provider.logout(self._query()))
                else:
                    self._answer((404, {"Content-Type": "text/plain"}, b"Not found"))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                form = {key: values[-1] for key, values in parse_qs(raw).items()}
                path = urlsplit(self.path).path
                if path == "/token":
                    self._answer(provider.token(form, self.headers.get("Authorization")))
                elif path == "/userinfo":
                    self._answer(provider.userinfo(self.headers.get("Authorization")))
                else:
                    self._answer((404, {"Content-Type": "text/plain"}, b"Not found"))

        return Handler

    def start(self) -> MockOidcProvider:
        self._server = ThreadingHTTPServer((self.host, self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mock-oidc", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> MockOidcProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
