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

from pydantic import SecretStr, field_validator, model_validator

from kpisync.core.connector import Batch, ConnectorConfig, Stream
from kpisync.core.httpclient import Runtime
from kpisync.core.models import Record
from kpisync.core.sdk import HeaderBudget, OAuth2ClientCredentials, RestConnector, dig, records_at
from kpisync.core.timeutil import to_utc

from . import mapping

PAGE = 100
LISTING_CAP = 1000
VERSION = "0.1"
HINT = (
    "check client_id and client_secret (KPISYNC_REDDIT_CLIENT_ID, KPISYNC_REDDIT_CLIENT_SECRET); "
    "new Reddit apps need approval under the Responsible Builder Policy"
)


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


class RedditConnector(RestConnector):
    name = "reddit"
    title = "Reddit"
    kind = "social"
    config_model = RedditConfig
    description = "Reddit posts naming the brand, sitewide and per subreddit (app-only OAuth; approved apps)."
    default_base_url = "https://oauth.reddit.com"
    client_options = {"default_retry_after": 5.0}

    config: RedditConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        assert isinstance(config, RedditConfig)
        self.user_agent = config.user_agent or f"python:kpisync:{VERSION} (by /u/{config.username})"
        super().__init__(config, runtime)
        # An API 401 comes after the token was renewed once (OAuth2ClientCredentials).
        self.http.auth_hint = f"the API refused a fresh token; {HINT}"
        self.brand = mapping.Brand(tuple(config.own_accounts), tuple(config.keywords))

    def authenticator(self) -> OAuth2ClientCredentials:
        """Application-only OAuth: POST grant_type=client_credentials (a form body) with HTTP
        Basic client credentials (reddit-archive/reddit wiki OAuth2)."""
        token_url = self.config.auth_url.rstrip("/") + "/api/v1/access_token"
        return OAuth2ClientCredentials(token_url, self.config.client_id, self.config.client_secret, basic=True, hint=HINT)

    def headers(self) -> dict[str, str]:
        return {"User-Agent": self.user_agent}  # [UA] Reddit throttles generic User-Agents

    def rate_policy(self) -> HeaderBudget:
        # X-Ratelimit-Remaining / X-Ratelimit-Reset (seconds to the end of the window).
        return HeaderBudget(remaining=("x-ratelimit-remaining",), reset=("x-ratelimit-reset",), floor=0)

    def token(self, renew: bool = False) -> str:
        auth = self.http.session.auth
        assert isinstance(auth, OAuth2ClientCredentials)
        return auth.token(renew=renew)

    # -- contract ------------------------------------------------------------------------------
    def check(self) -> None:
        self.token(renew=True)

    def streams(self) -> list[Stream]:
        return [SearchStream(self), SubredditsStream(self)]

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
            response = self.rd.http.get(path, params)
            children = records_at(response.data, "data.children", f"GET {path}")
            posts = [c["data"] for c in children if c.get("kind") == "t3" and isinstance(c.get("data"), dict)]
            stamps = [float(p.get("created_utc") or 0) for p in posts]
            if head is None and posts:
                head = max(stamps)
            keep = [p for p, s in zip(posts, stamps) if bound is None or s >= bound]
            count += len(posts)
            after = dig(response.data, "data.after")  # the next page's anchor; kept in the state
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

