"""Sign-in sessions, held in this process's memory only.

The cookie carries a random session id; the store is keyed by its SHA-256, so the admin key sits beside a value
the browser never sees. A session lasts ``DASHBOARD_SESSION_TTL_S`` from sign-in, whatever the activity, and
carries its own CSRF token. Restarting the dashboard signs everyone out, which is the point of keeping it here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def tokens_match(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


@dataclass
class Session:
    admin_key: str = field(repr=False)
    key_id: str
    csrf_token: str = field(repr=False)
    expires_at: float
    notices: list[str] = field(default_factory=list)
    # Secrets the API returns once (a new customer key), kept until the page that shows them is opened.
    reveals: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def notify(self, message: str) -> None:
        self.notices.append(message)

    def take_notices(self) -> list[str]:
        notices, self.notices = self.notices, []
        return notices

    def keep_reveal(self, name: str, payload: dict[str, Any]) -> None:
        self.reveals[name] = payload

    def take_reveal(self, name: str) -> dict[str, Any] | None:
        return self.reveals.pop(name, None)


class SessionStore:
    """At most ``max_sessions`` live sessions; when full, the one closest to expiry goes first."""

    def __init__(self, ttl_s: int, max_sessions: int, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, admin_key: str, key_id: str) -> tuple[str, Session]:
        """A new session and the id to put in the cookie (never stored as such)."""
        self._purge()
        while len(self._sessions) >= self.max_sessions:
            self._sessions.popitem(last=False)
        session_id = secrets.token_urlsafe(32)
        session = Session(
            admin_key=admin_key,
            key_id=key_id,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=self._clock() + self.ttl_s,
        )
        self._sessions[_digest(session_id)] = session
        return session_id, session

    def find(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        digest = _digest(session_id)
        session = self._sessions.get(digest)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._sessions[digest]
            return None
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(_digest(session_id), None)

    def close_all_for(self, session: Session) -> None:
        """Drop every session holding the same admin key (the API stopped accepting it)."""
        for digest, other in list(self._sessions.items()):
            if other.admin_key == session.admin_key:
                del self._sessions[digest]

    def _purge(self) -> None:
        now = self._clock()
        for digest, session in list(self._sessions.items()):
            if session.expires_at <= now:
                del self._sessions[digest]


class SignInTokens:
    """CSRF tokens for the sign-in form, before any session exists: an HMAC of a random nonce kept in a
    short-lived cookie, under a secret of this process (so nothing is stored per visitor)."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    def token_for(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()

    def valid(self, nonce: str | None, presented: str | None) -> bool:
        return bool(nonce) and tokens_match(self.token_for(nonce or ""), presented)
