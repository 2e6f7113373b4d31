"""Mastodon: mentions of the brand account and brand hashtags on one instance.

Two streams, both on Mastodon's id-ordered lists (newest first, `max_id` pages back, `min_id`
pages forward; docs.joinmastodon.org methods/notifications and methods/timelines):

* `mentions` — GET /api/v1/notifications?types[]=mention (user token, read:notifications),
  80 per page. Replies to the brand are mentions too (replying addresses the account).
* `hashtags` — GET /api/v1/timelines/tag/{tag} for each configured hashtag, 40 per page.

The first run pages back from the newest item to `start_date`; later runs poll forward from the
newest id seen, so a run with nothing new costs one request per feed. Requests per sync ≈
⌈new mentions/80⌉ + Σ⌈new tag posts/40⌉ (+1 per feed on the first run). README.md lists limits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import requests
from pydantic import SecretStr, field_validator, model_validator
from requests.utils import parse_header_links

from kpisync.core.connector import Batch, Connector, ConnectorConfig, Stream
from kpisync.core.errors import MalformedPayload
from kpisync.core.httpclient import HttpClient, RatePolicy, Runtime
from kpisync.core.models import Record
from kpisync.core.timeutil import to_utc

from . import mapping

NOTIFICATIONS_PAGE = 80  # max since Mastodon 4.1 (methods/notifications)
TIMELINE_PAGE = 40  # max for timelines (methods/timelines)
PRIVATE = frozenset({"private", "direct"})


class MastodonConfig(ConnectorConfig):
    """Settings: KPISYNC_MASTODON_<FIELD> or [sources.mastodon] in kpisync.toml."""

    #: The brand account's instance, e.g. https://mastodon.social (or set base_url).
    instance_url: str | None = None
    #: A user token of the brand account with the read:notifications scope.
    access_token: SecretStr
    #: The brand account the token belongs to, e.g. "nimbus" or "nimbus@mastodon.social".
    account: str
    #: More accounts of the brand: their posts are marked is_own_account.
    other_accounts: list[str] = []
    #: Brand hashtags to follow (without "#").
    hashtags: list[str] = []
    #: Keep followers-only and direct mentions (private conversations) too.
    include_private: bool = False

    @field_validator("hashtags")
    @classmethod
    def _bare_tags(cls, tags: list[str]) -> list[str]:
        return [t.strip().lstrip("#").lower() for t in tags if t.strip().lstrip("#")]

    @model_validator(mode="after")
    def _need_instance(self) -> MastodonConfig:
        if not self.instance_url and not self.base_url:
            raise ValueError("set 'instance_url' (e.g. https://mastodon.social)")
        return self


class IsoResetBudget(RatePolicy):
    """Mastodon sends X-RateLimit-Remaining and X-RateLimit-Reset as an ISO timestamp (api/rate-limits,
    300 requests / 5 min); its 429 has no Retry-After. Once nothing remains, wait for the reset."""

    def __init__(self) -> None:
        self._resume_at = -math.inf

    def wait_before(self, url: str, runtime: Runtime) -> tuple[float, str]:
        return max(0.0, self._resume_at - runtime.now()), "Mastodon rate limit (300 requests / 5 min)"

    def observe(self, url: str, response: requests.Response, runtime: Runtime) -> None:
        try:
            remaining = float(response.headers.get("X-RateLimit-Remaining", "nan"))
        except ValueError:
            return
        if not remaining <= 0:
            return
        try:
            reset = datetime.fromisoformat(response.headers["X-RateLimit-Reset"].replace("Z", "+00:00"))
            wait = reset.timestamp() - time.time()
        except (KeyError, ValueError):
            wait = 60.0
        self._resume_at = runtime.now() + max(0.0, wait)


class MastodonConnector(Connector):
    name = "mastodon"
    title = "Mastodon"
    kind = "social"
    config_model = MastodonConfig
    description = "Mentions of the brand account and brand hashtags on its Mastodon instance (free)."

    config: MastodonConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        assert isinstance(config, MastodonConfig)
        self.base_url = (config.base_url or config.instance_url or "").rstrip("/")
        host = urlsplit(config.instance_url or self.base_url).hostname or ""
        own = [config.account, *config.other_accounts]
        self.brand = mapping.Brand(
            instance_host=host,
            own_accounts=tuple(mapping.normalise_acct(a, host) for a in own),
            hashtags=tuple(config.hashtags),
        )
        self.http = HttpClient(
            self.base_url,
            runtime,
            name="mastodon",
            headers={"Authorization": f"Bearer {config.access_token.get_secret_value()}"},
            secrets=config.secret_values(),
            auth_hint="check access_token (KPISYNC_MASTODON_ACCESS_TOKEN): a user token of the brand "
            "account with the read:notifications scope",
            rate_policy=IsoResetBudget(),
            default_retry_after=1.0,
        )

    def check(self) -> None:
        data = self.http.get("/api/v1/notifications", [("types[]", "mention"), ("limit", 1)]).data
        if not isinstance(data, list):
            raise MalformedPayload("malformed response from GET /api/v1/notifications: expected a list")

    def streams(self) -> list[Stream]:
        return [MentionsStream(self), HashtagsStream(self)]

    def close(self) -> None:
        self.http.close()


class _Feed:
    """One id-ordered Mastodon list. State: {"min_id"} once caught up, {"head", "max_id"} while
    the first run pages back (so a killed backfill resumes where it stopped)."""

    def __init__(
        self, connector: MastodonConnector, path: str, params: list[tuple[str, Any]], limit: int, *, may_not_exist: bool = False
    ) -> None:
        self.http = connector.http
        #: A tag timeline answers 404 for a hashtag nobody has used yet (methods/timelines).
        self.may_not_exist = may_not_exist
        self.missing = False
        self.start = connector.config.start_date
        self.path = path
        self.params = [*params, ("limit", limit)]
        self.limit = limit

    def read(self, state: dict[str, Any]) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
        """(items, state after them) per page."""
        if "min_id" not in state:
            yield from self._backfill(state.get("head"), state.get("max_id"))
        else:
            yield from self._forward(str(state["min_id"]))

    def _page(self, params: list[tuple[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Items and the Link header's cursors ({"next": max_id, "prev": min_id}). Only the ids are
        taken from the links: requests always go to our own base URL, so the token is never sent
        to another host (and a proxy in base_url keeps working)."""
        response = self.http.get(self.path, params, tolerate=(404,) if self.may_not_exist else ())
        if response.status == 404:
            self.missing = True
            return [], {}
        if not isinstance(response.data, list):
            raise MalformedPayload(f"malformed response from GET {self.path}: expected a list")
        cursors = {}
        for link in parse_header_links(response.headers.get("Link", "")):
            rel, name = link.get("rel", ""), "max_id" if link.get("rel") == "next" else "min_id"
            value = _query(link.get("url"), name)
            if rel in ("next", "prev") and value:
                cursors[rel] = value
        return response.data, cursors

    def _backfill(self, head: str | None, max_id: str | None) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
        while True:
            items, cursors = self._page([*self.params, *([("max_id", max_id)] if max_id else [])])
            if self.missing:
                return
            if head is None:
                head = items[0]["id"] if items else "0"
            keep = [i for i in items if self.start is None or _created(i) >= self.start]
            max_id = cursors.get("next")
            done = not items or len(keep) < len(items) or max_id is None
            yield keep, ({"min_id": head} if done else {"head": head, "max_id": max_id})
            if done:
                return

    def _forward(self, min_id: str) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
        while True:
            items, cursors = self._page([*self.params, ("min_id", min_id)])
            if not items:
                return
            newest = max(items, key=lambda i: int(i["id"]))["id"]
            yield items, {"min_id": newest}
            # min_id returns the `limit` items just above the cursor: a short page is the top.
            if len(items) < self.limit:
                return
            min_id = cursors.get("prev") or newest


def _created(item: dict[str, Any]) -> datetime:
    stamp = to_utc(item.get("created_at"))
    if stamp is None:
        raise MalformedPayload("malformed Mastodon item: no created_at")
    return stamp


def _query(url: str | None, name: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get(name) if url else None
    return values[0] if values else None


class MentionsStream(Stream):
    """Statuses that mention the brand account (notifications of type mention)."""

    name = "mentions"

    def __init__(self, connector: MastodonConnector) -> None:
        self.md = connector

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        feed = _Feed(self.md, "/api/v1/notifications", [("types[]", "mention")], NOTIFICATIONS_PAGE)
        fallback = ("mention", "@" + self.md.brand.own_accounts[0])
        skipped = 0
        for items, new_state in feed.read(state or {}):
            records: list[Record] = []
            for notification in items:
                status = notification.get("status")
                if not isinstance(status, dict) or notification.get("type") != "mention":
                    continue
                if status.get("visibility") in PRIVATE and not self.md.config.include_private:
                    skipped += 1
                    continue
                records.append(mapping.mention(status, self.md.brand, fallback=fallback))
            yield Batch(records, new_state)
        if skipped:
            yield Batch([], notices=[
                f"mastodon: skipped {skipped} followers-only or direct mention(s); set include_private = true to keep them"
            ])


class HashtagsStream(Stream):
    """Public statuses carrying one of the brand hashtags, one feed per tag."""

    name = "hashtags"

    def __init__(self, connector: MastodonConnector) -> None:
        self.md = connector

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        tags: dict[str, Any] = dict((state or {}).get("tags") or {})
        for tag in self.md.config.hashtags:
            feed = _Feed(self.md, f"/api/v1/timelines/tag/{quote(tag)}", [], TIMELINE_PAGE, may_not_exist=True)
            for items, tag_state in feed.read(tags.get(tag) or {}):
                tags[tag] = tag_state
                records = [
                    mapping.mention(status, self.md.brand, fallback=("hashtag", "#" + tag))
                    for status in items
                    if status.get("reblog") is None  # tag timelines carry no boosts; be safe
                ]
                yield Batch(records, {"tags": dict(tags)})
            if feed.missing:
                yield Batch([], notices=[f"mastodon: #{tag} does not exist on this instance yet (no posts)"])
