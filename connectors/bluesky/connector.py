"""Bluesky: mentions, replies and quotes of the brand account, plus keyword and hashtag search.

Everything goes through the account's PDS with an app-password session (the public AppView
refuses anonymous searchPosts). Streams:

* `notifications` — app.bsky.notification.listNotifications?reasons=mention,reply,quote
  (100 per page), then app.bsky.feed.getPosts for the posts' counts (25 per call).
* `search` — app.bsky.feed.searchPosts?q=…&sort=latest&since=… per keyword and per "#hashtag".

Both are fan-outs (core/sdk/fanout.py) of newest-first lists with an opaque cursor: a poll
pages back until it reaches what the last poll saw (the list's mark: an indexedAt instant and
the uris at it) and only then moves the mark; a killed poll resumes from its saved cursor.
Authors' follower counts come from app.bsky.actor.getProfiles (25 per call, cached per run).
The session is created once and refreshed, never re-created per run: see session.py.
Requests per sync ≈ ⌈N/100⌉ + ⌈N/25⌉ + ⌈S/100⌉ per query + ⌈authors/25⌉.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator

from kpisync.core.config import resolve_db
from kpisync.core.connector import Batch, ConnectorConfig
from kpisync.core.errors import MalformedPayload
from kpisync.core.httpclient import HeaderBudget, RatePolicy, Runtime
from kpisync.core.models import Record
from kpisync.core.sdk.auth import TokenBackend, saved_tokens
from kpisync.core.sdk.fanout import FanOutStream, FeedPage, Listing
from kpisync.core.sdk.stream import RestConnector
from kpisync.core.timeutil import iso, to_utc

from . import mapping
from .session import BlueskySession

PAGE = 100  # listNotifications and searchPosts: limit 1..100
BATCH = 25  # getPosts uris / getProfiles actors: at most 25
REASONS = ("mention", "reply", "quote")


class BlueskyConfig(ConnectorConfig):
    """Settings: KPISYNC_BLUESKY_<FIELD> or [sources.bluesky] in kpisync.toml."""

    #: The brand account's handle (or email), e.g. "nimbus.bsky.social".
    identifier: str
    #: An app password (Settings → Privacy and security → App passwords), not the account password.
    app_password: SecretStr
    #: The account's PDS; base_url overrides it (proxies, simulators).
    pds_url: str = "https://bsky.social"
    keywords: list[str] = []
    hashtags: list[str] = []
    #: More accounts of the brand: their posts are marked is_own_account.
    other_accounts: list[str] = []
    #: Look up authors' follower counts (one request per 25 new authors).
    fetch_followers: bool = True
    #: Where the login session is kept between runs (see README): keyring if available, else file.
    session_store: TokenBackend = "auto"
    session_file: str | None = None

    @field_validator("hashtags")
    @classmethod
    def _bare_tags(cls, tags: list[str]) -> list[str]:
        return [t.strip().lstrip("#").lower() for t in tags if t.strip().lstrip("#")]


class Feed(Listing):
    """One newest-first atproto list with an opaque cursor, ordered by indexedAt. Several posts
    can share an instant, so the mark is {"at": instant, "ids": the uris seen at it}: items at
    the mark's instant that are not among its uris are still read."""

    def __init__(self, bs: BlueskyConnector, key: str, method: str, field: str, params: list[tuple[str, Any]],
                 fallback: tuple[str, str], since: bool = False) -> None:  # fmt: skip
        super().__init__(key)
        self.bs, self.method, self.field, self.params, self.fallback = bs, method, field, params, fallback
        #: searchPosts takes a lower bound: the mark's instant, or start_date on a first pass.
        self.since = since

    def newest_params(self, mark: Any) -> list[tuple[str, Any]]:
        return self.older_params(None, mark)

    def older_params(self, cursor: Any, mark: Any) -> list[tuple[str, Any]]:
        params = [*self.params, ("limit", PAGE)]
        since = mark["at"] if mark else iso(self.bs.config.start_date)
        if self.since and since:
            params.append(("since", since))
        return params + ([("cursor", cursor)] if cursor else [])

    def fetch(self, params: list[tuple[str, Any]]) -> FeedPage:
        data = self.bs.xrpc(self.method, params)
        items = data.get(self.field)
        if not isinstance(items, list):
            raise MalformedPayload(f"malformed response from {self.method}: expected '{self.field}'")
        return FeedPage(items, older=data.get("cursor"))

    def item_id(self, item: dict[str, Any]) -> str:
        return str(item.get("uri"))

    def item_time(self, item: dict[str, Any]) -> datetime | None:
        return to_utc(item.get("indexedAt"))

    def advance(self, mark: Any, items: Sequence[dict[str, Any]]) -> Any:
        stamps = [(iso(t), self.item_id(i)) for i in items if (t := self.item_time(i)) is not None]
        if mark:
            stamps += [(mark["at"], uri) for uri in mark["ids"]]
        if not stamps:
            return mark
        newest = max(at for at, _ in stamps)
        return {"at": newest, "ids": sorted({uri for at, uri in stamps if at == newest})}

    def seen(self, item: dict[str, Any], mark: Any) -> bool:
        stamp = iso(self.item_time(item))
        return bool(mark) and stamp is not None and (stamp < mark["at"] or (stamp == mark["at"] and self.item_id(item) in mark["ids"]))


def _upgrade(entry: dict[str, Any]) -> dict[str, Any]:
    """A list state written before the fan-out ({"seen", "seen_uris"}, mid-poll also {"head",
    "head_uris", "cursor"}) in its terms, so an upgrade does not read everything again."""
    if "seen_uris" not in entry:
        return entry
    out: dict[str, Any] = {"mark": {"at": entry["seen"], "ids": entry["seen_uris"]}} if entry.get("seen") else {}
    if entry.get("cursor"):
        out.update(head={"at": entry["head"], "ids": entry.get("head_uris") or []}, older=entry["cursor"])
    return out


class NotificationsStream(FanOutStream):
    """Posts that mention, reply to or quote the brand account."""

    name = "notifications"
    group = "feeds"
    connector: BlueskyConnector

    def listings(self) -> list[Listing]:
        fallback = ("mention", self.connector.brand().own_term)
        params = [("reasons", r) for r in REASONS]
        return [Feed(self.connector, "notifications", "app.bsky.notification.listNotifications", "notifications", params, fallback)]

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        if state and self.group not in state:
            state = {self.group: {"notifications": _upgrade(state)}}
        return super().read(state)

    def map_page(self, items: list[dict[str, Any]], page: FeedPage) -> list[Record]:  # type: ignore[override]
        items = [n for n in items if n.get("reason") in REASONS]  # the server filters too
        views = self.connector.post_views([str(n["uri"]) for n in items])
        posts = []
        for n in items:
            view = views.get(str(n["uri"]))
            author, record = (view["author"], view["record"]) if view else (n.get("author") or {}, n.get("record") or {})
            posts.append((str(n["uri"]), author, record, view))
        return self.connector.records(posts, page.listing.fallback)  # type: ignore[union-attr]


class SearchStream(FanOutStream):
    """app.bsky.feed.searchPosts for each keyword and "#hashtag", newest first since the last poll."""

    name = "search"
    group = "queries"
    connector: BlueskyConnector

    def listings(self) -> list[Listing]:
        queries = [(k, ("keyword", k)) for k in self.connector.config.keywords]
        queries += [("#" + t, ("hashtag", "#" + t)) for t in self.connector.config.hashtags]
        return [
            Feed(self.connector, q, "app.bsky.feed.searchPosts", "posts", [("q", q), ("sort", "latest")], fallback, since=True)
            for q, fallback in queries
        ]

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        queries = (state or {}).get(self.group) or {}
        return super().read({self.group: {q: _upgrade(entry) for q, entry in queries.items()}})

    def map_page(self, items: list[dict[str, Any]], page: FeedPage) -> list[Record]:  # type: ignore[override]
        posts = [(str(v["uri"]), v.get("author") or {}, v.get("record") or {}, v) for v in items]
        return self.connector.records(posts, page.listing.fallback)  # type: ignore[union-attr]


class BlueskyConnector(RestConnector):
    name = "bluesky"
    title = "Bluesky"
    kind = "social"
    config_model = BlueskyConfig
    description = "Mentions, replies and quotes of the brand account and keyword/hashtag search on Bluesky (free)."
    check_path = "/xrpc/com.atproto.server.getSession"
    client_options = {"default_retry_after": 1.0}

    stream_classes = [NotificationsStream, SearchStream]

    config: BlueskyConfig
    auth: BlueskySession

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self._brand: mapping.Brand | None = None
        self._followers: dict[str, int | None] = {}

    def api_base_url(self) -> str:
        return self.config.base_url or self.config.pds_url

    def authenticator(self) -> BlueskySession:
        # Logins go through the session's own client: createSession's daily limit must not pause reads.
        c = self.config
        host = urlsplit(c.pds_url).hostname or c.pds_url
        file = Path(c.session_file) if c.session_file else Path(f"{resolve_db(None)}.bluesky-session.json")
        cache = saved_tokens(c.session_store, file, self.runtime)
        hint = "check identifier and app_password (KPISYNC_BLUESKY_IDENTIFIER, KPISYNC_BLUESKY_APP_PASSWORD)"
        return BlueskySession(c.identifier, c.app_password, f"bluesky-session:{host}:{c.identifier.lower()}", cache, hint)

    def rate_policy(self) -> RatePolicy:
        # docs.bsky.app advanced-guides/rate-limits: 3000 requests / 5 min per IP, RateLimit-* headers.
        return HeaderBudget(remaining=("ratelimit-remaining",), reset=("ratelimit-reset",), floor=0, reset_is_epoch=True)

    def xrpc(self, method: str, params: Sequence[tuple[str, Any]]) -> dict[str, Any]:
        """GET /xrpc/<method> with the session (an expired access token is refreshed once: session.py)."""
        data = self.http.get(f"/xrpc/{method}", list(params)).data
        if not isinstance(data, dict):
            raise MalformedPayload(f"malformed response from {method}: expected an object")
        return data

    # -- contract ------------------------------------------------------------------------------
    def check(self) -> None:
        if not self.xrpc("com.atproto.server.getSession", ()).get("did"):
            raise MalformedPayload("malformed response from com.atproto.server.getSession: no did")

    # -- helpers for the streams ---------------------------------------------------------------
    def brand(self) -> mapping.Brand:
        if self._brand is None:
            session = self.auth.session().extra
            handles = {session.get("handle", "").lower(), *(h.lower().lstrip("@") for h in self.config.other_accounts)}
            if "@" not in self.config.identifier:
                handles.add(self.config.identifier.lower().lstrip("@"))
            self._brand = mapping.Brand(
                own_did=session["did"],
                own_handles=frozenset(h for h in handles if h),
                keywords=tuple(self.config.keywords),
                hashtags=tuple(self.config.hashtags),
            )
        return self._brand

    def followers(self, dids: Sequence[str]) -> dict[str, int | None]:
        """Follower counts of `dids` via app.bsky.actor.getProfiles (≤ 25 per call), cached."""
        if self.config.fetch_followers:
            missing = sorted({d for d in dids if d not in self._followers})
            for start in range(0, len(missing), BATCH):
                chunk = missing[start : start + BATCH]
                data = self.xrpc("app.bsky.actor.getProfiles", [("actors", d) for d in chunk])
                for profile in data.get("profiles") or []:
                    self._followers[str(profile.get("did"))] = profile.get("followersCount")
                for did in chunk:
                    self._followers.setdefault(did, None)
        return {d: self._followers.get(d) for d in dids}

    def post_views(self, uris: Sequence[str]) -> dict[str, dict[str, Any]]:
        views: dict[str, dict[str, Any]] = {}
        for start in range(0, len(uris), BATCH):
            data = self.xrpc("app.bsky.feed.getPosts", [("uris", u) for u in uris[start : start + BATCH]])
            views.update({str(v.get("uri")): v for v in data.get("posts") or []})
        return views

    def records(self, posts: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any] | None]],
                fallback: tuple[str, str]) -> list[Record]:  # fmt: skip
        """(uri, author, record, postView) → SocialMention rows with follower counts."""
        followers = self.followers([str(author.get("did")) for _, author, _, _ in posts])
        brand = self.brand()
        return [
            mapping.mention(uri, author, record, brand, fallback=fallback, counts=view,
                            followers=followers.get(str(author.get("did"))))
            for uri, author, record, view in posts
        ]  # fmt: skip
