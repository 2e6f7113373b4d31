"""Bluesky: mentions, replies and quotes of the brand account, plus keyword and hashtag search.

Everything goes through the account's PDS with an app-password session (the public AppView
refuses anonymous searchPosts). Streams:

* `notifications` — app.bsky.notification.listNotifications?reasons=mention,reply,quote
  (100 per page), then app.bsky.feed.getPosts for the posts' counts (25 per call).
* `search` — app.bsky.feed.searchPosts?q=…&sort=latest&since=… per keyword and per "#hashtag".

Both lists run newest first with an opaque cursor, so a poll pages back until it reaches what
the last poll saw (`seen`, an indexedAt/sortAt instant, and the uris at it) and only then moves
the state; a killed poll resumes from its saved cursor. Authors' follower counts come from app.bsky.actor.getProfiles
(25 per call, cached per run). The session is created once and refreshed, never re-created per
run: see session.py. Requests per sync ≈ ⌈N/100⌉ + ⌈N/25⌉ + ⌈S/100⌉ per query + ⌈authors/25⌉.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator

from kpisync.core.config import resolve_db
from kpisync.core.connector import Batch, ConnectorConfig, Stream
from kpisync.core.errors import MalformedPayload
from kpisync.core.httpclient import HeaderBudget, RatePolicy, Runtime
from kpisync.core.models import Record
from kpisync.core.sdk.auth import TokenBackend, saved_tokens
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


class BlueskyConnector(RestConnector):
    name = "bluesky"
    title = "Bluesky"
    kind = "social"
    config_model = BlueskyConfig
    description = "Mentions, replies and quotes of the brand account and keyword/hashtag search on Bluesky (free)."
    check_path = "/xrpc/com.atproto.server.getSession"
    client_options = {"default_retry_after": 1.0}

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

    def streams(self) -> list[Stream]:
        return [NotificationsStream(self), SearchStream(self)]

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


def _poll(
    fetch: Callable[[str | None], tuple[list[dict[str, Any]], str | None]],
    stamp: Callable[[dict[str, Any]], datetime | None],
    state: dict[str, Any],
    floor: datetime | None,
) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
    """Page a newest-first list back to max(last seen, floor).

    State between polls: {"seen": newest instant, "seen_uris": the uris at that instant}; within
    a poll also {"head", "head_uris", "cursor"}. Items at the `seen` instant that are not in
    `seen_uris` are still read (several posts can share an instant); known ones are skipped, so
    a poll with nothing new costs one request and enriches nothing.
    """
    seen, seen_uris = to_utc(state.get("seen")), set(state.get("seen_uris") or ())
    head, head_uris, cursor = state.get("head"), list(state.get("head_uris") or ()), state.get("cursor")
    bound = max((b for b in (seen, floor) if b is not None), default=None)
    while True:
        items, next_cursor = fetch(cursor)
        stamps = [stamp(i) for i in items]
        if head is None and items:
            head = iso(max(s for s in stamps if s is not None))
        head_uris += [str(i.get("uri")) for i, s in zip(items, stamps) if s is not None and iso(s) == head]
        keep = [
            i for i, s in zip(items, stamps)
            if s is None or bound is None or s > bound or (s == bound and str(i.get("uri")) not in seen_uris)
        ]  # fmt: skip
        reached = any(s is not None and bound is not None and s < bound for s in stamps)
        if not items or reached or not next_cursor:
            if head is None:
                yield keep, ({"seen": iso(seen), "seen_uris": sorted(seen_uris)} if seen else {})
            else:
                yield keep, {"seen": head, "seen_uris": sorted(set(head_uris))}
            return
        yield keep, {"seen": iso(seen), "seen_uris": sorted(seen_uris), "head": head,
                     "head_uris": sorted(set(head_uris)), "cursor": next_cursor}  # fmt: skip
        cursor = next_cursor


class NotificationsStream(Stream):
    """Posts that mention, reply to or quote the brand account."""

    name = "notifications"

    def __init__(self, connector: BlueskyConnector) -> None:
        self.bs = connector

    def _fetch(self, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        params: list[tuple[str, Any]] = [("reasons", r) for r in REASONS] + [("limit", PAGE)]
        if cursor:
            params.append(("cursor", cursor))
        data = self.bs.xrpc("app.bsky.notification.listNotifications", params)
        items = data.get("notifications")
        if not isinstance(items, list):
            raise MalformedPayload("malformed response from listNotifications: expected 'notifications'")
        return items, data.get("cursor")

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        fallback = ("mention", self.bs.brand().own_term)
        for items, new_state in _poll(self._fetch, lambda n: to_utc(n.get("indexedAt")), state or {}, self.bs.config.start_date):
            items = [n for n in items if n.get("reason") in REASONS]  # the server filters too
            views = self.bs.post_views([str(n["uri"]) for n in items])
            posts = []
            for n in items:
                view = views.get(str(n["uri"]))
                author, record = (view["author"], view["record"]) if view else (n.get("author") or {}, n.get("record") or {})
                posts.append((str(n["uri"]), author, record, view))
            yield Batch(self.bs.records(posts, fallback), new_state)


class SearchStream(Stream):
    """app.bsky.feed.searchPosts for each keyword and "#hashtag", newest first since the last poll."""

    name = "search"

    def __init__(self, connector: BlueskyConnector) -> None:
        self.bs = connector

    def queries(self) -> list[tuple[str, tuple[str, str]]]:
        return [(k, ("keyword", k)) for k in self.bs.config.keywords] + [
            ("#" + t, ("hashtag", "#" + t)) for t in self.bs.config.hashtags
        ]

    def _page(self, query: str, since: str | None, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        params: list[tuple[str, Any]] = [("q", query), ("sort", "latest"), ("limit", PAGE)]
        if since:
            params.append(("since", since))
        if cursor:
            params.append(("cursor", cursor))
        data = self.bs.xrpc("app.bsky.feed.searchPosts", params)
        posts = data.get("posts")
        if not isinstance(posts, list):
            raise MalformedPayload("malformed response from searchPosts: expected 'posts'")
        return posts, data.get("cursor")

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        saved: dict[str, Any] = dict((state or {}).get("queries") or {})
        start = self.bs.config.start_date
        for query, fallback in self.queries():
            query_state = saved.get(query) or {}
            fetch = partial(self._page, query, query_state.get("seen") or iso(start))
            for views, new_state in _poll(fetch, lambda v: to_utc(v.get("indexedAt")), query_state, start):
                saved[query] = new_state
                posts = [(str(v["uri"]), v.get("author") or {}, v.get("record") or {}, v) for v in views]
                yield Batch(self.bs.records(posts, fallback), {"queries": dict(saved)})
