"""Helprace: a full scan of the ticket list, diffed against what the last sync saw.

Helprace's API has no incremental filter, no sort by update time and no status history, so
every sync pages through all tickets (⌈T/100⌉ requests) and keeps a 12-hex fingerprint of each
ticket's payload in the stream state (the SDK's `SnapshotStream`). Only tickets whose
fingerprint changed cost a replies request; tickets that stopped being listed are confirmed
with one `GET /tickets/{id}` each and, on a 404, tombstoned (flagged `is_deleted`). A ticket's
fingerprint is committed in the same batch as its replies, so a kill at any point only repeats
work. Endpoints, confirmed facts and assumptions are in README.md beside this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import Field, SecretStr, model_validator

from kpisync.core.connector import Batch, ConnectorConfig
from kpisync.core.errors import ApiError, MalformedPayload
from kpisync.core.httpclient import HttpClient, HttpResponse, Runtime
from kpisync.core.models import Record
from kpisync.core.sdk import (
    BasicAuth, Change, Gone, MinInterval, Page, Paginator, RestConnector, RestStream, SnapshotStream, fingerprint,
)  # fmt: skip
from kpisync.core.sdk.paginate import Params, Request
from kpisync.core.timeutil import utcnow

from . import mapping
from .records import Tombstone

API = "/api/v1/"
TICKETS = API + "tickets/"
USERS = API + "users/"
CSAT_NOTICE = (
    "Helprace's API has no satisfaction ratings: import Helprace's satisfaction export with "
    "`kpisync import helprace-ratings FILE.csv`"
)


class HelpraceConfig(ConnectorConfig):
    """Settings: KPISYNC_HELPRACE_<FIELD> or [sources.helprace] in kpisync.toml."""

    subdomain: str | None = None
    email: str | None = None
    api_key: SecretStr | None = None
    #: Client-side pacing. Helprace documents no limit; 60/min is a guess that stays polite.
    requests_per_minute: float = Field(60, gt=0)
    #: Items per list page; 100 is the largest size seen working (community client).
    page_size: int = Field(100, ge=1, le=100)
    #: Store ticket and reply bodies (private notes may hold personal data; no KPI needs them).
    store_bodies: bool = False

    @model_validator(mode="after")
    def _need_target_and_credentials(self) -> HelpraceConfig:
        if not self.subdomain and not self.base_url:
            raise ValueError("set 'subdomain' (or 'base_url')")
        if self.email is None or self.api_key is None:
            raise ValueError("set 'email' and 'api_key'")
        return self


class HelpracePages(Paginator):
    """`page=1, 2, …&per_page=N` over `{key: {current_page, last_page, per_page, data}}` (or a
    bare list under `key`): ends at `last_page` when the paginator says it, else at the first
    page shorter than its `per_page`, or empty. A page that repeats the previous one's items is
    an error rather than a loop (a server ignoring `page`)."""

    def __init__(self, key: str, size: int) -> None:
        self.key, self.size = key, size

    def first(self, path: str, params: Params) -> Request:
        return path, {**params, "page": 1, "per_page": self.size}

    def pages(
        self, http: HttpClient, path: str, params: Params | None = None, records_path: str = "", tolerate: tuple[int, ...] = ()
    ) -> Iterator[Page]:
        request: Request | None = self.first(path, params or {})
        page, previous_ids = 1, None
        while request is not None:
            response = http.get(request[0], request[1], tolerate=tolerate)
            if response.status >= 400:
                yield Page(response, [])
                return
            items = _unwrap_list(response.data, self.key, f"GET {path}")
            yield Page(response, items)
            ids = [item.get("id") for item in items]
            if items and ids == previous_ids:
                raise ApiError(f"helprace: GET {path} answered page {page} like page {page - 1}; paging is not honoured")
            page, previous_ids = page + 1, ids
            request = self.next_request(response, items, request)

    def next_request(self, response: HttpResponse, items: list[dict[str, Any]], current: Request) -> Request | None:
        meta = response.data.get(self.key) if isinstance(response.data, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        query = dict(current[1] or {})
        current_page, last, per_page = meta.get("current_page"), meta.get("last_page"), meta.get("per_page")
        if not items:
            return None
        if isinstance(current_page, int) and isinstance(last, int):
            if current_page >= last:
                return None
        elif isinstance(per_page, int) and len(items) < per_page:
            return None
        query["page"] = int(query["page"]) + 1
        return current[0], query


def _unwrap_list(data: Any, key: str, what: str) -> list[dict[str, Any]]:
    container = data.get(key) if isinstance(data, dict) else None
    if isinstance(container, list):
        return container
    if isinstance(container, dict) and isinstance(container.get("data"), list):
        return container["data"]
    raise MalformedPayload(f"malformed response from {what}: expected '{key}' with a 'data' list")


def _unwrap_item(data: Any, key: str, what: str) -> dict[str, Any]:
    item = data.get(key, data) if isinstance(data, dict) else None
    if not isinstance(item, dict) or "id" not in item:
        raise MalformedPayload(f"malformed response from {what}: expected a '{key}' object")
    return item


class Users(RestStream):
    """Agents and end users with their organizations; a full listing every run (no filter)."""

    name = "users"
    path = USERS
    connector: HelpraceConnector

    def __init__(self, connector: HelpraceConnector) -> None:
        super().__init__(connector)
        self.paginator = connector.list_pages("users")

    def prepare(self) -> None:
        self.agents: set[str] = set()
        self.orgs_sent: set[str] = set()

    def map(self, item: dict[str, Any]) -> list[Record]:
        records: list[Record] = [mapping.user(item)]
        if mapping.is_agent(item):
            self.agents.add(str(item["id"]))
        org = item.get("organization")
        if isinstance(org, dict) and org.get("id") is not None and str(org["id"]) not in self.orgs_sent:
            self.orgs_sent.add(str(org["id"]))
            records.append(mapping.organization(org))
        return records

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        yield from super().read(state)
        self.connector.agents = frozenset(self.agents)


class Tickets(SnapshotStream):
    """Tickets, replies, internal notes, teams and synthetic status events.

    State: `{"v": 1, "tickets": {id: "<fingerprint>|<status>"}}` — about 25 bytes a ticket; the
    status is the previous sync's, for the synthetic status history. Changed tickets are
    committed in batches of at least a page and at least 1/20 of the known tickets.
    """

    name = "tickets"
    path = TICKETS
    params = {"sort_by": "created", "sort_order": "desc"}
    state_key = "tickets"
    connector: HelpraceConnector

    def __init__(self, connector: HelpraceConnector) -> None:
        super().__init__(connector)
        self.paginator = connector.list_pages("tickets")
        self.replies = connector.list_pages("replies")

    def prepare(self) -> None:
        self.agents = self.connector.agent_ids()
        self.teams_sent: set[str] = set()

    def min_batch(self) -> int:
        return self.connector.config.page_size

    def fingerprint(self, item: dict[str, Any]) -> str:
        return f"{fingerprint(item)}|{mapping.status_of(item)}"

    def wanted(self, item: dict[str, Any]) -> bool:
        start = self.start_date()
        return start is None or mapping.created_of(item) >= start

    def last_page(self, items: list[dict[str, Any]]) -> bool:
        """Sorted newest first: after a page that ends before the start date, all is older still."""
        start = self.start_date()
        return start is not None and _older_than(items, start)

    def children(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        """The ticket's replies and internal notes; `Gone` if the ticket went since it was listed."""
        replies: list[dict[str, Any]] = []
        for page in self.replies.pages(self.http, f"{TICKETS}{item['id']}/replies", tolerate=(404,)):
            if page.response.status == 404:
                raise Gone(item["id"])
            replies.extend(page.items)
        return replies

    def map_change(self, change: Change) -> list[Record]:
        item, replies, bodies = change.item, change.children, self.connector.config.store_bodies
        out: list[Record] = [mapping.ticket(item, self.agents, bodies)]
        first = mapping.description(item, replies, self.agents, bodies)
        if first is not None:
            out.append(first)
        out.extend(mapping.reply(r, change.id, self.agents, bodies) for r in replies)
        out.extend(mapping.status_events(item, change.previous.split("|", 1)[1] if change.previous else None))
        team = item.get("team")
        if isinstance(team, dict) and team.get("id") is not None and str(team["id"]) not in self.teams_sent:
            self.teams_sent.add(str(team["id"]))
            out.append(mapping.group(team))
        return out

    def confirm(self, item_id: str) -> dict[str, Any] | None:
        response = self.http.get(f"{TICKETS}{item_id}", tolerate=(404,))
        return None if response.status == 404 else _unwrap_item(response.data, "ticket", f"GET {TICKETS}{item_id}")

    def tombstone(self, item_id: str) -> list[Record]:
        return [Tombstone.of("tickets", item_id, utcnow(), f"not listed; GET {TICKETS}{item_id} answered 404")]

    def notices(self) -> list[str]:
        return [CSAT_NOTICE]

    def vanished_notice(self, count: int) -> str:
        return f"{count} ticket(s) no longer returned by Helprace (404) were marked deleted"


class HelpraceConnector(RestConnector):
    name = "helprace"
    title = "Helprace"
    kind = "helpdesk"
    config_model = HelpraceConfig
    description = "Tickets, replies and internal notes, users and teams; full scan diffed by fingerprint (no incremental API)."
    stream_classes = [Users, Tickets]

    config: HelpraceConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.agents: frozenset[str] | None = None

    def api_base_url(self) -> str:
        return self.config.base_url or f"https://{self.config.subdomain}.helprace.com"

    def authenticator(self) -> BasicAuth:
        assert self.config.email and self.config.api_key
        auth = BasicAuth(f"{self.config.email}/api_key", self.config.api_key)
        auth.hint = (
            "check email and api_key (KPISYNC_HELPRACE_EMAIL, KPISYNC_HELPRACE_API_KEY); "
            "the key is under Settings > Integrations > API in Helprace"
        )
        return auth

    def rate_policy(self) -> MinInterval:
        return MinInterval(self.config.requests_per_minute)

    def check(self) -> None:
        next(HelpracePages("users", 1).pages(self.http, USERS))

    def list_pages(self, key: str) -> HelpracePages:
        return HelpracePages(key, self.config.page_size)

    def agent_ids(self) -> frozenset[str]:
        """Ids of owners, admins and agents (who is an agent in replies): the users stream
        leaves them here; read once per run when it did not run first."""
        if self.agents is None:
            for _ in Users(self).read(None):
                pass
        assert self.agents is not None
        return self.agents


def _older_than(items: list[dict[str, Any]], start: datetime) -> bool:
    """True when the page is sorted newest first and ends before `start`."""
    times = [mapping.created_of(item) for item in items]
    return bool(times) and times[-1] < start and all(a >= b for a, b in zip(times, times[1:]))
