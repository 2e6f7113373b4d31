"""The Bluesky login session: an app-password login that is created once and then refreshed.

createSession is limited to about 100 calls a day per account (bsky-docs issue #183: the
entryway enforces 100/day although the rate-limits page says 300), so logging in on every
scheduled sync would lock the account out by noon. The session's tokens (accessJwt, refreshJwt)
are kept and reused instead — but never in the store (its tables and `sync_state` are readable
by anyone with the file, and `kpisync status` prints stream state) and never in logs.

Where (`session_store`): the OS keyring (service "kpisync", entry "bluesky-session:<pds
host>:<identifier>") when one is available, else a JSON file created with mode 0600 (default:
next to the store, ``<KPISYNC_DB or ./kpisync.db>.bluesky-session.json``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import requests
from pydantic import SecretStr

from kpisync.core.errors import ApiError, AuthError, MalformedPayload
from kpisync.core.httpclient import HttpClient
from kpisync.core.sdk.auth import Token, TokenCache, TokenLogin
from kpisync.core.timeutil import iso

#: Answers to a token the PDS no longer accepts: refresh, then resend (lexicons' error names).
TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
#: Short createSession rate limits waited out before giving up.
LOGIN_ATTEMPTS = 4
SHORT_LOGIN_WAIT = 60.0


class BlueskySession(TokenLogin):
    """com.atproto.server.createSession once, refreshSession whenever the access token expires.

    The access token carries no announced lifetime: it is used until the PDS answers
    ExpiredToken (HTTP 400) or InvalidToken, then refreshed with the refreshJwt (which that
    revokes) and the request resent once; a refused refresh logs in again.
    """

    def __init__(self, identifier: str, app_password: SecretStr, cache_key: str, cache: TokenCache, hint: str) -> None:
        super().__init__(cache_key, cache=cache)
        self.identifier, self.password, self.hint = identifier, app_password.get_secret_value(), hint

    def secrets(self) -> list[str]:
        return [self.password]

    def refused(self, response: requests.Response) -> bool:
        if response.status_code not in (400, 401):
            return False
        try:
            body = response.json()
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("error") in TOKEN_ERRORS

    def login(self, http: HttpClient) -> Token:
        """createSession. A 429 whose limit comes back within a minute (a short burst limit) is
        waited out; one that resets later (the daily login limit) fails with the time it resets."""
        for _ in range(LOGIN_ATTEMPTS):
            response = http.request(
                "POST", "/xrpc/com.atproto.server.createSession",
                json_body={"identifier": self.identifier, "password": self.password},
                tolerate=(400, 401, 429), retry_statuses=(500, 502, 503, 504),
            )  # fmt: skip
            if response.status != 429:
                break
            wait = _short_wait(response.headers)
            if wait is None:
                reset = response.headers.get("ratelimit-reset")
                when = f"; it resets at {iso(float(reset))}" if reset and reset.isdigit() else ""
                where = self.cache.where if self.cache is not None else "nowhere"
                raise ApiError(
                    "bluesky: createSession is rate limited (Bluesky allows about 100 logins a day per account)"
                    f"{when}. kpisync reuses its saved session ({where}); it was missing or revoked",
                    status=429,
                )
            assert self.runtime is not None
            self.runtime.sleep(wait, "createSession rate limit")
        else:
            raise ApiError("bluesky: createSession stayed rate limited after short waits", status=429)
        if response.status in (400, 401):
            raise AuthError(f"bluesky: authentication failed: login refused ({_xrpc_error(response.data)}) — {self.hint}")
        return _session(response.data, "createSession")

    def refresh(self, http: HttpClient, token: Token) -> Token | None:
        """refreshSession with the refreshJwt; None (log in again) when it is expired or revoked."""
        response = http.request(
            "POST", "/xrpc/com.atproto.server.refreshSession", headers={"Authorization": f"Bearer {token.refresh}"},
            tolerate=(400, 401), retry_statuses=(429, 500, 502, 503, 504),
        )  # fmt: skip
        if response.status in (400, 401):
            return None
        return _session(response.data, "refreshSession")


def _session(data: Any, method: str) -> Token:
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("accessJwt", "refreshJwt", "did")):
        raise MalformedPayload(f"malformed response from {method}: expected accessJwt, refreshJwt and did")
    return Token(data["accessJwt"], refresh=data["refreshJwt"], extra={"did": data["did"], "handle": str(data.get("handle") or "")})


def _short_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds until a login rate limit lifts, when that is within a minute; else None."""
    retry_after = headers.get("Retry-After")
    if retry_after and retry_after.strip().isdigit():
        seconds = float(retry_after)
    else:
        reset = headers.get("ratelimit-reset")
        if not (reset and reset.strip().isdigit()):
            return None
        seconds = max(0.0, float(reset) - time.time())
    return seconds if seconds <= SHORT_LOGIN_WAIT else None


def _xrpc_error(data: Any) -> str:
    """"ExpiredToken: Token has expired" from an XRPC error body."""
    if isinstance(data, dict) and data.get("error"):
        return f"{data['error']}: {data.get('message', '')}".strip(": ")
    return "no error body"
