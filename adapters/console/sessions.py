"""Console sessions: a random session id in a signed cookie, the session itself (who, until when, its CSRF
token) kept in the server's memory, so logging out or expiring ends it at once. A restart logs everyone out.

The cookie is HttpOnly and SameSite=Lax, and Secure when the request came over TLS. Every form carries the
session's CSRF token (`csrf_token`); a POST without the right one is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.http.auth import Principal

COOKIE = "casecore_console"
LOGIN_COOKIE = "casecore_login_csrf"
CSRF_FIELD = "csrf_token"
DEFAULT_MINUTES = 480


@dataclass
class Session:
    """One logged-in person."""

    login: str
    principal: Principal
    expires: datetime
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: what the next page tells this person (a step done or refused), shown once
    notes: list[dict[str, Any]] = field(default_factory=list)


class Sessions:
    """Session ids → sessions, and the signing of the cookie that carries the id."""

    def __init__(self, secret: bytes | None = None, minutes: float = DEFAULT_MINUTES):
        env = os.environ.get("CASECORE_CONSOLE_SECRET")
        self._secret = secret or (env.encode() if env else secrets.token_bytes(32))
        self.lifetime = timedelta(minutes=minutes)
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _sign(self, value: str) -> str:
        return hmac.new(self._secret, value.encode(), hashlib.sha256).hexdigest()

    def start(self, login: str, principal: Principal) -> tuple[str, Session]:
        """A new session; returns the cookie value and the session."""
        sid = secrets.token_urlsafe(32)
        session = Session(login=login, principal=principal, expires=datetime.now(UTC) + self.lifetime)
        with self._lock:
            self._by_id[sid] = session
        return f"{sid}.{self._sign(sid)}", session

    def find(self, cookie: str | None) -> Session | None:
        """The live session behind a cookie, or None (no cookie, a forged one, logged out or expired)."""
        if not cookie or "." not in cookie:
            return None
        sid, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(sid)):
            return None
        with self._lock:
            session = self._by_id.get(sid)
            if session is not None and session.expires <= datetime.now(UTC):
                del self._by_id[sid]
                return None
        return session

    def end(self, cookie: str | None) -> None:
        if cookie and "." in cookie:
            with self._lock:
                self._by_id.pop(cookie.rpartition(".")[0], None)

    def expire_all(self) -> None:
        """Every session ends now (an operator's lever; tests use it to see an expired session)."""
        with self._lock:
            for s in self._by_id.values():
                s.expires = datetime.now(UTC) - timedelta(seconds=1)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
