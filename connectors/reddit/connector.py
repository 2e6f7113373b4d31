"""Reddit: posts that name the brand, sitewide and in chosen subreddits.

Application-only OAuth (client credentials at www.reddit.com/api/v1/access_token), then
oauth.reddit.com:

* `search` — GET /search?q=…&sort=new (sitewide), one query OR-ing the keywords and the
  brand's usernames.
* `subreddits` — GET /r/{sub}/search?q=…&restrict_sr=1&sort=new per configured subreddit, which
  reaches deeper into the communities that matter than the capped sitewide listing.

Listings run newest first, 100 per request, paged with `after`; a poll reads back to the newest
post of the last poll. Reddit serves at most ~1000 items of any listing (r/redditdev API FAQ), so
a poll that hits the end of the listing without reaching the last poll says so: posts in between
may be missing, poll more often. Comments are not searched (Reddit's search returns submissions).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests
from pydantic import SecretStr, field_validator, model_validator

from kpisync.core.connector import Batch, Connector, ConnectorConfig, Stream
from kpisync.core.errors import ApiError, AuthError, MalformedPayload
from kpisync.core.httpclient import HeaderBudget, HttpClient, Runtime
from kpisync.core.models import Record
from kpisync.core.timeutil import to_utc

from . import mapping

PAGE = 100
LISTING_CAP = 1000
VERSION = "0.1"


class RedditConfig(ConnectorConfig):
    """Settings: KPISYNC_REDDIT_<FIELD> or [sources.reddit] in kpisync.toml."""

    #: The app's client id and secret (reddit.com/prefs/apps; new apps need Reddit's approval).
    client_id: str
    client_secret: SecretStr
    #: Your Reddit username, for the User-Agent Reddit requires ("… (by /u/<username>)").
    username: str | None = None
    #: A complete User-Agent instead ("<platform>:<app id>:<version> (by /u/<username>)").
    user_agent: str | None = None
    keywords: list[str] = []
    #: Subreddits to search one by one (without "r/").
    subreddits: list[str] = []
    #: The brand's Reddit accounts (without "u/"): their posts are own, "u/<name>" is a mention.
    own_accounts: list[str] = []
    #: Where tokens come from; base_url (default https://oauth.reddit.com) is where the API is.
    auth_url: str = "https://www.reddit.com"

    @field_validator("subreddits", "own_accounts")
    @classmethod
    def _bare(cls, names: list[str]) -> list[str]:
        return [n.strip().removeprefix("/").removeprefix("r/").removeprefix("u/") for n in names if n.strip()]

    @model_validator(mode="after")
    def _need_contact(self) -> RedditConfig:
        if not self.user_agent and not self.username:
            raise ValueError("set 'username' (Reddit requires a User-Agent naming a contact) or 'user_agent'")
        if not self.keywords and not self.own_accounts:
            raise ValueError("set 'keywords' and/or 'own_accounts' to search for")
        return self


class RedditConnector(Connector):
    name = "reddit"
    title = "Reddit"
    kind = "social"
    config_model = RedditConfig
    description = "Reddit posts naming the brand, sitewide and per subreddit (app-only OAuth; approved apps)."

    config: RedditConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        assert isinstance(config, RedditConfig)
        self.user_agent = config.user_agent or f"python:kpisync:{VERSION} (by /u/{config.username})"
        self.auth_hint = (
            "check client_id and client_secret (KPISYNC_REDDIT_CLIENT_ID, KPISYNC_REDDIT_CLIENT_SECRET); "
            "new Reddit apps need approval under the Responsible Builder Policy"
        )
        self.http = HttpClient(
            (config.base_url or "https://oauth.reddit.com").rstrip("/"),
            runtime,
            name="reddit",
            headers={"User-Agent": self.user_agent},
            secrets=config.secret_values(),
            auth_hint=self.auth_hint,
            # X-Ratelimit-Remaining / X-Ratelimit-Reset (seconds to the end of the window).
            rate_policy=HeaderBudget(remaining=("x-ratelimit-remaining",), reset=("x-ratelimit-reset",), floor=0),
            default_retry_after=5.0,
        )
        self._auth_session = requests.Session()
        self._token: str | None = None
        self._token_expires = 0.0
        self.brand = mapping.Brand(tuple(config.own_accounts), tuple(config.keywords))

    # -- auth ----------------------------------------------------------------------------------
    def token(self, renew: bool = False) -> str:
        if renew or self._token is None or self.runtime.now() >= self._token_expires:
            self._token, lifetime = self._fetch_token()
            self._token_expires = self.runtime.now() + lifetime - 60
        return self._token

    def _fetch_token(self) -> tuple[str, float]:
        """Application-only OAuth: POST grant_type=client_credentials with HTTP Basic client
        credentials (reddit-archive/reddit wiki OAuth2). A form body, which HttpClient does not
        send, hence this one direct call with its own small retry."""
        url = self.config.auth_url.rstrip("/") + "/api/v1/access_token"
        auth = (self.config.client_id, self.config.client_secret.get_secret_value())
        for attempt in range(4):
            self.runtime.count_request()
            try:
                response = self._auth_session.post(
                    url, data={"grant_type": "client_credentials"}, auth=auth,
                    headers={"User-Agent": self.user_agent}, timeout=(10, 60),
                )  # fmt: skip
            except requests.RequestException as exc:
                if attempt == 3:
                    raise ApiError(f"reddit: cannot get a token from {self.config.auth_url} ({type(exc).__name__})") from None
                self.runtime.sleep(2.0**attempt, "retrying the Reddit token request")
                continue
            if response.status_code in (401, 403):
                raise AuthError(f"reddit: the token request was refused (HTTP {response.status_code}) — {self.auth_hint}")
            if response.status_code in (429, 500, 502, 503, 504) and attempt < 3:
                self.runtime.sleep(2.0**attempt, "retrying the Reddit token request")
                continue
            try:
                data = response.json()
            except ValueError:
                data = None
            if response.status_code != 200 or not isinstance(data, dict) or not data.get("access_token"):
                error = data.get("error") if isinstance(data, dict) else f"HTTP {response.status_code}"
                raise AuthError(f"reddit: no token ({error}) — {self.auth_hint}")
            return str(data["access_token"]), float(data.get("expires_in") or 3600)
        raise ApiError("reddit: the token request kept failing")

    def listing(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """One Listing page; an expired token (401) is renewed once."""
        for attempt in range(2):
            response = self.http.request(
                "GET", path, params=params, headers={"Authorization": f"bearer {self.token(renew=attempt > 0)}"},
                tolerate=(401,),
            )  # fmt: skip
            if response.status == 401:
                continue
            data = response.data
            if not isinstance(data, dict) or not isinstance((data.get("data") or {}).get("children"), list):
                raise MalformedPayload(f"malformed response from GET {path}: expected a Listing")
            return data["data"]
        raise AuthError(f"reddit: the API refused a fresh token (HTTP 401) — {self.auth_hint}")

    # -- contract ------------------------------------------------------------------------------
    def check(self) -> None:
        self.token(renew=True)

    def streams(self) -> list[Stream]:
        return [SearchStream(self), SubredditsStream(self)]

    def close(self) -> None:
        self.http.close()
        self._auth_session.close()

    def query(self) -> str:
        terms = [*self.config.keywords, *self.config.own_accounts]
        return " OR ".join(f'"{t}"' if " " in t else t for t in terms)


class _Listings(Stream):
    """Polls of newest-first search listings, one state per listing key."""

    def __init__(self, connector: RedditConnector) -> None:
        self.rd = connector

    def listings(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(state key, path, extra params)."""
        raise NotImplementedError

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        saved: dict[str, Any] = dict((state or {}).get("listings") or {})
        for key, path, extra in self.listings():
            for records, new_state, notices in self._poll(path, extra, saved.get(key) or {}, key):
                saved[key] = new_state
                yield Batch(records, {"listings": dict(saved)}, notices)

    def _poll(self, path: str, extra: dict[str, Any], state: dict[str, Any], key: str) -> Iterator[tuple[list[Record], dict[str, Any], list[str]]]:
        """State: {"since"} (epoch of the newest post seen) between polls; {"since", "head",
        "after", "count"} within one. Posts at the `since` second are read again (upserts)."""
        since, head = state.get("since"), state.get("head")
        after, count = state.get("after"), int(state.get("count") or 0)
        start = self.rd.config.start_date.timestamp() if self.rd.config.start_date else None
        bound = max((b for b in (since, start) if b is not None), default=None)
        fallback = ("keyword", self.rd.config.keywords[0]) if self.rd.config.keywords else ("mention", f"u/{self.rd.config.own_accounts[0]}")
        while True:
            params = {"q": self.rd.query(), "sort": "new", "t": "all", "type": "link", "limit": PAGE, "raw_json": 1, **extra}
            if after:
                params.update(after=after, count=count)
            page = self.rd.listing(path, params)
            posts = [c["data"] for c in page["children"] if c.get("kind") == "t3" and isinstance(c.get("data"), dict)]
            stamps = [float(p.get("created_utc") or 0) for p in posts]
            if head is None and posts:
                head = max(stamps)
            keep = [p for p, s in zip(posts, stamps) if bound is None or s >= bound]
            count += len(posts)
            after = page.get("after")
            records: list[Record] = [mapping.mention(p, self.rd.brand, fallback=fallback) for p in keep]
            if posts and len(keep) == len(posts) and after:
                yield records, {"since": since, "head": head, "after": after, "count": count}, []
                continue
            notices = []
            if posts and len(keep) == len(posts) and count >= LISTING_CAP:
                notices.append(self._cap_notice(key, since, posts[-1]))
            newest = head if head is not None else since
            yield records, ({"since": newest} if newest is not None else {}), notices
            return

    def _cap_notice(self, key: str, since: float | None, oldest: dict[str, Any]) -> str:
        reached = to_utc(float(oldest.get("created_utc") or 0))
        if since is None:
            return (f"reddit: {key} stopped at Reddit's 1000-item listing limit; posts before {reached:%Y-%m-%d %H:%M} UTC "
                    "were not read (add subreddits to reach further back)")
        return (f"reddit: {key} hit Reddit's 1000-item listing limit before reaching the last poll "
                f"({to_utc(since):%Y-%m-%d %H:%M} UTC); posts between then and {reached:%Y-%m-%d %H:%M} UTC may be "
                "missing — poll more often")


class SearchStream(_Listings):
    name = "search"

    def listings(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [("search", "/search", {})]


class SubredditsStream(_Listings):
    name = "subreddits"

    def listings(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(f"r/{sub}", f"/r/{sub}/search", {"restrict_sr": 1}) for sub in self.rd.config.subreddits]

