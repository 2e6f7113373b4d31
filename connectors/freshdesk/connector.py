"""Freshdesk (API v2): tickets by `updated_since`, conversations only for changed tickets.

Requests per sync ≈ ⌈T/100⌉ ticket pages (a few more: see the keyset note on TicketsStream)
+ one conversations call per changed ticket + ⌈R/100⌉ ratings + ⌈E/100⌉ time entries + one
request per small list. Endpoints, costs and plan limits are in README.md beside this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr, model_validator

from kpisync.core.connector import Batch, Connector, ConnectorConfig, Stream
from kpisync.core.errors import ApiError, ConfigError
from kpisync.core.httpclient import HttpClient, HttpResponse, Runtime, expect
from kpisync.core.sdk import CreditBudget, link_url
from kpisync.core.models import Record, StatusCategory
from kpisync.core.timeutil import iso, to_utc

from . import mapping

API = "/api/v2"
PER_PAGE = 100  # the documented maximum; larger values are a 400
#: `updated_since` of a first sync without `start_date` (Freshdesk launched in 2010).
EARLIEST = "2000-01-01T00:00:00Z"
#: The 400 at the page cap: "You cannot access tickets beyond the 300th page. ..."
PAGE_CAP = re.compile(r"beyond the \d+\w* page")


class FreshdeskConfig(ConnectorConfig):
    """Settings: KPISYNC_FRESHDESK_<FIELD> or [sources.freshdesk] in kpisync.toml."""

    #: `acme` of acme.freshdesk.com (a full host or URL is accepted too).
    domain: str | None = None
    #: Profile settings → Your API key. Sent as Basic auth `key:X`.
    api_key: SecretStr
    #: Ticket `source` codes that count as social support: 5 Twitter, 6 Facebook, 13 WhatsApp,
    #: 17/18 Instagram message/comment, 19/20 Facebook message/comment (mapping.SOCIAL_SOURCES).
    social_sources: list[int] = list(mapping.SOCIAL_SOURCES)
    #: Store message bodies and ticket descriptions (costs `include=description`, 2 credits).
    store_bodies: bool = False
    #: Public notes are not replies by default (kpi-definitions); Freshdesk's reports count them.
    count_public_notes_as_replies: bool = False
    #: Category of custom statuses, by code or label: {"7" = "hold", "Waiting on Customer" = "pending"}.
    status_categories: dict[str, StatusCategory] = {}
    #: Ratings created this many days before the newest one seen are read again (edits).
    ratings_lookback_days: int = 14
    #: Time entries executed this many days before the newest one seen are read again.
    time_entries_lookback_days: int = 7

    @model_validator(mode="after")
    def _need_target(self) -> FreshdeskConfig:
        if not self.domain and not self.base_url:
            raise ValueError("set 'domain' (the acme of acme.freshdesk.com) or 'base_url'")
        return self

    def url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        host = str(self.domain).strip().removeprefix("https://").removeprefix("http://").strip("/")
        if "." not in host:
            host = f"{host}.freshdesk.com"
        return f"https://{host}"


def _endpoint(url: str) -> str:
    """Endpoints with their own per-minute caps; everything else shares the account budget."""
    path = urlsplit(url).path.rstrip("/")
    if path.endswith(f"{API}/tickets"):
        return "tickets"
    if path.endswith(f"{API}/contacts"):
        return "contacts"
    return "other"


def next_link(response: HttpResponse) -> str | None:
    """The `rel="next"` URL of a Link header, or None on the last page."""
    return link_url(response, "next")


class FreshdeskConnector(Connector):
    name = "freshdesk"
    title = "Freshdesk"
    kind = "helpdesk"
    config_model = FreshdeskConfig
    description = "Tickets, conversations, status from stats, contacts, CSAT and time entries via API v2."

    config: FreshdeskConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        assert isinstance(config, FreshdeskConfig)
        self.base_url = config.url()
        self.http = HttpClient(
            self.base_url,
            runtime,
            name="freshdesk",
            basic_auth=(config.api_key.get_secret_value(), "X"),
            secrets=config.secret_values(),
            # Credits per minute from X-RateLimit-Remaining, each call's cost from
            # X-RateLimit-Used-CurrentRequest (1, plus 2 per include); list caps learnt from 429s.
            rate_policy=CreditBudget(
                remaining="X-RateLimit-Remaining", cost="X-RateLimit-Used-CurrentRequest", endpoint=_endpoint
            ),
            auth_hint="check api_key (KPISYNC_FRESHDESK_API_KEY: Profile settings → Your API Key) and domain",
            max_attempts=10,
        )
        self._agents: frozenset[str] | None = None
        self._labels: mapping.Labels | None = None

    def check(self) -> None:
        data = self.http.get(f"{API}/agents/me").data
        if not isinstance(data, dict) or data.get("id") is None:
            raise ConfigError("freshdesk: GET /api/v2/agents/me did not name an agent — check the domain")

    def streams(self) -> list[Stream]:
        return [
            AgentsStream(self),
            ContactsStream(self),
            GroupsStream(self),
            CompaniesStream(self),
            BusinessHoursStream(self),
            SlaPoliciesStream(self),
            TicketsStream(self),
            TicketsStream(self, "spam"),
            TicketsStream(self, "deleted"),
            RatingsStream(self),
            TimeEntriesStream(self),
        ]

    def close(self) -> None:
        self.http.close()

    # -- shared, read once per run ------------------------------------------------------------
    def pages(self, path: str, params: dict[str, Any] | None = None, tolerate: tuple[int, ...] = ()) -> Iterator[HttpResponse]:
        """Responses of a page/per_page list, following `Link: <…>; rel="next"`."""
        url: str | None = path
        query: dict[str, Any] | None = {"per_page": PER_PAGE, **(params or {})}
        while url:
            response = self.http.get(url, query, tolerate=tolerate)
            yield response
            if response.status >= 400:
                return
            url, query = next_link(response), None

    def agent_ids(self) -> frozenset[str]:
        """Ids of agents (message roles); the agents stream fills this, else one list read."""
        if self._agents is None:
            ids: set[str] = set()
            for response in self.pages(f"{API}/agents"):
                ids.update(str(a["id"]) for a in expect_list(response, f"GET {API}/agents"))
            self._agents = frozenset(ids)
        return self._agents

    def labels(self) -> mapping.Labels:
        """Status and source labels (custom statuses included), one request per run."""
        if self._labels is None:
            fields = expect_list(self.http.get(f"{API}/ticket_fields"), f"GET {API}/ticket_fields")
            self._labels = mapping.Labels(fields, self.config.status_categories)
        return self._labels

    def start(self) -> str:
        return iso(self.config.start_date) if self.config.start_date else EARLIEST  # type: ignore[return-value]


def expect_list(response: HttpResponse, what: str) -> list[dict[str, Any]]:
    """Freshdesk lists are bare JSON arrays."""
    if not isinstance(response.data, list):
        return expect({"items": response.data}, "items", list, what)  # raises MalformedPayload
    return response.data


class _FreshdeskStream(Stream):
    def __init__(self, connector: FreshdeskConnector) -> None:
        self.fd = connector
        self.http = connector.http


class _SmallList(_FreshdeskStream):
    """A small list read whole on every run (agents, groups, companies...): upserts of unchanged
    rows write nothing, so a quiet sync costs one request and no writes."""

    path: str
    optional = False  # plan- or permission-gated: a 403/404 is a notice, not a failure

    def map(self, item: dict[str, Any]) -> Record:
        raise NotImplementedError

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        tolerate = (403, 404) if self.optional else ()
        for response in self.fd.pages(self.path, tolerate=tolerate):
            if response.status in (403, 404):
                yield Batch([], notices=[f"{self.name}: not available to this API key or plan (HTTP {response.status})"])
                return
            yield Batch([self.map(item) for item in expect_list(response, f"GET {self.path}")])


class AgentsStream(_SmallList):
    name = "agents"
    path = f"{API}/agents"

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        ids: set[str] = set()
        for batch in super().read(state):
            ids.update(r.external_id for r in batch.records)
            yield batch
        self.fd._agents = frozenset(ids)

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.agent(item)


class GroupsStream(_SmallList):
    name = "groups"
    path = f"{API}/groups"

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.group(item)


class CompaniesStream(_SmallList):
    name = "companies"
    path = f"{API}/companies"

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.company(item)


class BusinessHoursStream(_SmallList):
    name = "business_hours"
    path = f"{API}/business_hours"
    optional = True

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.schedule(item)


class SlaPoliciesStream(_SmallList):
    name = "sla_policies"
    path = f"{API}/sla_policies"
    optional = True

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.sla_policy(item)


class _WindowedList(_FreshdeskStream):
    """An unordered list filtered by a time (`_updated_since`, `created_since`,
    `executed_after`): the window is re-read whole and the state moves only after its last
    page, to the newest time seen minus a lookback for edits the filter cannot see."""

    path: str
    param: str
    stamp_key: str
    lookback = timedelta(0)

    def map(self, items: list[dict[str, Any]]) -> list[Record]:
        raise NotImplementedError

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        newest = state.get("since") if state else None
        since = iso(to_utc(newest) - self.lookback) if newest else self.first_since()
        params = {self.param: since} if since else {}
        responses = self.fd.pages(self.path, params, tolerate=(403,))
        for response in responses:
            if response.status == 403:
                yield Batch([], notices=[self.forbidden_notice(response)])
                return
            items = expect_list(response, f"GET {self.path}")
            for item in items:
                stamp = mapping.stamp(item.get(self.stamp_key))
                if stamp and (newest is None or stamp > newest):
                    newest = stamp
            last = next_link(response) is None
            yield Batch(self.map(items), {"since": newest} if last and newest else None)

    def first_since(self) -> str | None:
        return iso(self.fd.config.start_date) if self.fd.config.start_date else None

    def forbidden_notice(self, response: HttpResponse) -> str:
        raise ApiError(f"freshdesk: GET {self.path} was refused (HTTP 403): {_error_text(response)}", status=403)


class ContactsStream(_WindowedList):
    name = "contacts"
    path = f"{API}/contacts"
    param = "_updated_since"
    stamp_key = "updated_at"

    def map(self, items: list[dict[str, Any]]) -> list[Record]:
        return [mapping.contact(item) for item in items]


class RatingsStream(_WindowedList):
    """CSAT from the account-wide list (never per ticket). `created_since` cannot see edits, so
    the last `ratings_lookback_days` are read again; plans without surveys answer 403."""

    name = "satisfaction_ratings"
    path = f"{API}/surveys/satisfaction_ratings"
    param = "created_since"
    stamp_key = "created_at"

    def __init__(self, connector: FreshdeskConnector) -> None:
        super().__init__(connector)
        self.lookback = timedelta(days=connector.config.ratings_lookback_days)

    def map(self, items: list[dict[str, Any]]) -> list[Record]:
        return [r for r in (mapping.rating(item) for item in items) if r is not None]

    def forbidden_notice(self, response: HttpResponse) -> str:
        return f"satisfaction ratings skipped: surveys are not available on this Freshdesk plan or to this API key ({_error_text(response)})"


class TimeEntriesStream(_WindowedList):
    name = "time_entries"
    path = f"{API}/time_entries"
    param = "executed_after"
    stamp_key = "executed_at"

    def __init__(self, connector: FreshdeskConnector) -> None:
        super().__init__(connector)
        self.lookback = timedelta(days=connector.config.time_entries_lookback_days)

    def map(self, items: list[dict[str, Any]]) -> list[Record]:
        return [mapping.time_entry(item) for item in items]

    def forbidden_notice(self, response: HttpResponse) -> str:
        return f"time entries skipped: time tracking is not available on this Freshdesk plan or to this API key ({_error_text(response)})"


class TicketsStream(_FreshdeskStream):
    """Tickets ordered by `updated_at`, read as a keyset: every request asks for page 1 of
    `updated_since` = the newest `updated_at` seen, and drops the tickets already seen at that
    second (the filter is inclusive). Why not page=2, 3…: offset pages of a list that changes
    while we read skip a ticket whenever an earlier one moves to the end, and the list stops
    at page 300 (HTTP 400 "You cannot access tickets beyond the 300th page"). The keyset costs
    about one re-read ticket per page and never meets the cap, so accounts of any size sync
    exactly; only when more than 300×100 tickets share one second does it page on, and fail
    clearly at the cap.

    The main list holds conversations of each changed ticket in the same batch, so the
    cursor never runs ahead of them. `filter=spam` and `filter=deleted` are separate streams
    (they are left out of the main list); their tickets are only flagged, no conversations.
    """

    def __init__(self, connector: FreshdeskConnector, filter_: str | None = None) -> None:
        super().__init__(connector)
        self.filter = filter_
        self.name = f"{filter_}_tickets" if filter_ else "tickets"  # type: ignore[misc]
        config = connector.config
        self.social = frozenset(config.social_sources)
        self.includes = "stats,description" if config.store_bodies else "stats"

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        since = str(state["since"]) if state and state.get("since") else self.fd.start()
        seen = {str(i) for i in (state or {}).get("seen", [])}
        page = 1
        labels = self.fd.labels()
        while True:
            params: dict[str, Any] = {
                "updated_since": since, "order_by": "updated_at", "order_type": "asc",
                "per_page": PER_PAGE, "page": page, "include": self.includes,
            }  # fmt: skip
            if self.filter:
                params["filter"] = self.filter
            response = self.http.get(f"{API}/tickets", params, tolerate=(400,))
            if response.status == 400:
                raise self._bad_request(response, since, page)
            rows = expect_list(response, f"GET {API}/tickets")
            fresh = [r for r in rows if not (mapping.stamp(r.get("updated_at")) == since and str(r["id"]) in seen)]
            newest = max((mapping.stamp(r.get("updated_at")) or since for r in rows), default=since)
            if newest > since:
                since, page = newest, 1
                seen = {str(r["id"]) for r in rows if mapping.stamp(r.get("updated_at")) == newest}
            else:  # a whole page at one second: page on within it
                seen.update(str(r["id"]) for r in rows)
                page += 1
            yield Batch(self._records(fresh, labels), {"since": since, "seen": sorted(seen)})
            if not rows or next_link(response) is None:
                return

    def _records(self, tickets: list[dict[str, Any]], labels: mapping.Labels) -> list[Record]:
        config = self.fd.config
        records: list[Record] = []
        for data in tickets:
            ticket = mapping.ticket(data, labels, self.social, self.fd.base_url, config.store_bodies)
            records.append(ticket)
            if self.filter:
                continue
            records.extend(mapping.status_events(data, labels))
            records.append(mapping.description(data, config.store_bodies, ticket.channel))
            records.extend(self._conversations(data["id"], ticket.channel))
        return records

    def _conversations(self, ticket_id: Any, channel: str) -> list[Record]:
        agents = self.fd.agent_ids()
        config = self.fd.config
        path = f"{API}/tickets/{ticket_id}/conversations"
        messages: list[Record] = []
        for response in self.fd.pages(path, tolerate=(404,)):
            if response.status == 404:  # deleted or merged away since the list was read
                return messages
            for item in expect_list(response, f"GET {path}"):
                messages.append(
                    mapping.conversation(item, agents, config.store_bodies, config.count_public_notes_as_replies, channel)
                )
        return messages

    def _bad_request(self, response: HttpResponse, since: str, page: int) -> ApiError:
        text = _error_text(response)
        if PAGE_CAP.search(text):
            return ApiError(
                f"freshdesk: more than {page - 1} pages of tickets share updated_at {since}; Freshdesk "
                "lists at most 300 pages, so the tickets beyond cannot be read through this API",
                status=400,
            )
        return ApiError(f"freshdesk: GET {API}/tickets was rejected (HTTP 400): {text}", status=400)


def _error_text(response: HttpResponse) -> str:
    """Freshdesk errors: {"description", "errors": [{"field", "message", "code"}]} or
    {"code", "message"}."""
    data = response.data
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict))
        if data.get("message"):
            return str(data.get("message"))
    return f"HTTP {response.status}"

