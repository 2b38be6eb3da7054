"""Dashboard sessions: a signed, expiring cookie that names an API key, and CSRF tokens.

The browser never keeps the API key itself. Signing in with a key sets ``automl_session`` to
``<key id>.<expiry>.<nonce>.<signature>`` (HMAC-SHA256 under a secret of the service), HttpOnly
and SameSite=Strict. Every request re-checks that the key is still valid, so revoking a key
ends its sessions. The secret lives in the artifact directory (created once, mode 0600), so
every API process sharing that directory accepts the same sessions and a restart keeps them.

State-changing form posts carry a token derived from the session (``csrf_token``); a
cross-site page can neither read it nor send the cookie (SameSite), and the Origin header of
a post must be this service's own. Before sign-in, a random ``automl_csrf`` cookie stands in
for the session (double submit), so a foreign site cannot sign a browser in either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from api.errors import APIError, UnauthorizedError

SESSION_COOKIE = "automl_session"
PRE_SESSION_COOKIE = "automl_csrf"
SESSION_TTL_S = 12 * 3600
SECRET_FILE = ".dashboard-secret"

_lock = threading.Lock()


class SignInRequiredError(UnauthorizedError):
    """A dashboard page was asked for without a valid session: pages redirect to sign-in."""


class CrossSiteRequestError(APIError):
    """A form post without this session's CSRF token, or from another site's page."""

    status_code = 403


def load_secret(artifact_dir: Path) -> bytes:
    """The signing secret, created on first use (atomically: two processes starting at once
    agree on one)."""
    path = Path(artifact_dir) / SECRET_FILE
    with _lock:
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: use theirs
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32))
        for _ in range(50):  # the other process may still be writing it
            text = path.read_text().strip()
            if len(text) == 64:
                return bytes.fromhex(text)
            time.sleep(0.01)
    raise RuntimeError(f"the dashboard secret {path} is unreadable; delete it to make a new one")


@dataclass(frozen=True)
class WebSession:
    key_id: int
    expires: int
    nonce: str
    token: str


class SessionCodec:
    """Issues and checks session cookies and the CSRF tokens bound to them."""

    def __init__(self, secret: bytes, ttl_s: int = SESSION_TTL_S) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    def _sign(self, message: str) -> str:
        mac = hmac.new(self._secret, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self, key_id: int) -> str:
        payload = f"{key_id}.{int(time.time()) + self.ttl_s}.{secrets.token_urlsafe(12)}"
        return f"{payload}.{self._sign('session:' + payload)}"

    def verify(self, token: str | None) -> WebSession | None:
        """The session a cookie names, or None if it is forged, malformed or expired."""
        if not token or len(token) > 200:
            return None
        payload, _, signature = token.rpartition(".")
        if not hmac.compare_digest(signature, self._sign("session:" + payload)):
            return None
        key_id, _, rest = payload.partition(".")
        expires, _, nonce = rest.partition(".")
        if not (key_id.isdigit() and expires.isdigit()) or int(expires) < time.time():
            return None
        return WebSession(int(key_id), int(expires), nonce, token)

    @staticmethod
    def new_pre_session() -> str:
        """A random stand-in for a session on the sign-in form (double-submit CSRF)."""
        return secrets.token_urlsafe(24)

    def csrf_token(self, token: str) -> str:
        """The form token for a session (or for a pre-session cookie)."""
        return self._sign("csrf:" + token)

    def csrf_ok(self, token: str | None, submitted: str | None) -> bool:
        if not token or not submitted:
            return False
        return hmac.compare_digest(self.csrf_token(token), submitted)
