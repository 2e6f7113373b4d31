"""Freshdesk (API v2) on the connector SDK: tickets by `updated_since`, conversations only for
changed tickets.

Requests per sync ≈ ⌈T/100⌉ ticket pages (a few more: see the keyset note on Tickets)
+ one conversations call per changed ticket + ⌈R/100⌉ ratings + ⌈E/100⌉ time entries + one
request per small list. Endpoints, costs and plan limits are in README.md beside this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import SecretStr, model_validator

from kpisync.core.connector import Batch, ConnectorConfig
from kpisync.core.errors import ApiError, ConfigError
from kpisync.core.httpclient import HttpResponse, Runtime
from kpisync.core.models import Record, StatusCategory
from kpisync.core.sdk import (
    BasicAuth, CreditBudget, LinkHeader, Page, PageCapReached, RestConnector, RestStream, UpdatedSince, records_at,
)  # fmt: skip
from kpisync.core.sdk.paginate import Params, Request

from . import mapping

API = "/api/v2"
TICKETS = f"{API}/tickets"
#: [Pagination] every list pages by `Link: <…>; rel="next"`; `per_page` is at most 100 (more is a 400).
LIST = LinkHeader()
PER_PAGE = {"per_page": 100}
#: [Tickets] the 400 past the cap: "You cannot access tickets beyond the 300th page. ..."
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
    if path.endswith(TICKETS):
        return "tickets"
    return "contacts" if path.endswith(f"{API}/contacts") else "other"


def error_text(response: HttpResponse) -> str:
    """Freshdesk errors: {"description", "errors": [{"field", "message", "code"}]} or {"code", "message"}."""
    data = response.data
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict))
        if data.get("message"):
            return str(data.get("message"))
    return f"HTTP {response.status}"


class _Stream(RestStream):
    """A Freshdesk list: a bare JSON array, 100 a page, Link-header paging."""

    connector: FreshdeskConnector
    paginator = LIST
    params = PER_PAGE


class _SmallList(_Stream):
    """Read whole on every run: upserts of unchanged rows write nothing, so a quiet sync costs
    one request and no writes."""

    def unavailable(self, status: int) -> str:
        return f"{self.name}: not available to this API key or plan (HTTP {status})"


class Agents(_SmallList):
    name, path = "agents", f"{API}/agents"

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.agent(item)

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        """Leaves the agent ids (message roles) on the connector: no second read for tickets."""
        ids: set[str] = set()
        for batch in super().read(state):
            ids.update(r.external_id for r in batch.records)
            yield batch
        self.connector.agents = frozenset(ids)


class Groups(_SmallList):
    name, path = "groups", f"{API}/groups"

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.group(item)


class Companies(_SmallList):
    name, path = "companies", f"{API}/companies"

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.company(item)


class BusinessHours(_SmallList):
    name, path, optional = "business_hours", f"{API}/business_hours", True

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.schedule(item)


class SlaPolicies(_SmallList):
    name, path, optional = "sla_policies", f"{API}/sla_policies", True

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.sla_policy(item)


class _Windowed(_Stream):
    """An unordered list filtered by a time (`_updated_since`, `created_since`, `executed_after`):
    re-read whole from the newest time seen minus a lookback (edits the filter cannot see); the
    state moves only after the last page. A first sync without `start_date` sends no filter."""

    optional = True  # a 403 is the notice `skipped`, or an error when that is empty
    skipped: ClassVar[str] = ""

    @property
    def tolerate(self) -> tuple[int, ...]:
        return (403,)

    def pages(self, params: dict[str, Any]) -> Iterator[Page]:
        for page in super().pages(params):
            if page.response.status == 403:
                self.refusal = error_text(page.response)
                if not self.skipped:
                    raise ApiError(f"freshdesk: GET {self.path} was refused (HTTP 403): {self.refusal}", status=403)
            yield page

    def unavailable(self, status: int) -> str:
        return f"{self.skipped} ({self.refusal})"

    @staticmethod
    def window(param: str, field: str, lookback_days: int = 0) -> UpdatedSince:
        return UpdatedSince(param, field, ordered=False, lookback=timedelta(days=lookback_days), earliest=None)


class Contacts(_Windowed):
    name, path = "contacts", f"{API}/contacts"
    cursor = _Windowed.window("_updated_since", "updated_at")

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.contact(item)


class Ratings(_Windowed):
    """CSAT from the account-wide list (never per ticket). `created_since` cannot see edits, so
    the last `ratings_lookback_days` are read again; plans without surveys answer 403."""

    name, path = "satisfaction_ratings", f"{API}/surveys/satisfaction_ratings"
    skipped = "satisfaction ratings skipped: surveys are not available on this Freshdesk plan or to this API key"

    def __init__(self, connector: FreshdeskConnector) -> None:
        super().__init__(connector)
        self.cursor = self.window("created_since", "created_at", connector.config.ratings_lookback_days)

    def map(self, item: dict[str, Any]) -> Record | None:
        return mapping.rating(item)


class TimeEntries(_Windowed):
    name, path = "time_entries", f"{API}/time_entries"
    skipped = "time entries skipped: time tracking is not available on this Freshdesk plan or to this API key"

    def __init__(self, connector: FreshdeskConnector) -> None:
        super().__init__(connector)
        self.cursor = self.window("executed_after", "executed_at", connector.config.time_entries_lookback_days)

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.time_entry(item)


class Tickets(_Stream):
    """Tickets by `updated_at` as a keyset (the SDK's ordered `UpdatedSince`): every request is
    page 1 of `updated_since` = the newest second seen, minus the ids already seen at it. Offset
    pages of a changing list skip tickets, and the list stops at page 300 (a 400); the keyset
    never gets there unless more than 300×100 tickets share one second (README: "Why the ticket
    list is read as a keyset"). `updated_since` is always sent: without it, only 30 days.

    Each changed ticket's conversations are read in `map`, into the same batch, so the cursor
    never runs ahead of them. Spam and deleted tickets (`filter=`, left out of the main list)
    are the two streams below: flagged only, no conversations.
    """

    name, path = "tickets", TICKETS
    cursor = UpdatedSince("updated_since", "updated_at")
    filter: ClassVar[str | None] = None

    def request_params(self) -> Params:
        config = self.connector.config
        include = "stats,description" if config.store_bodies else "stats"
        params = {"order_by": "updated_at", "order_type": "asc", **PER_PAGE, "page": 1, "include": include}
        return {**params, "filter": self.filter} if self.filter else params

    def prepare(self) -> None:
        self.labels = self.connector.labels()
        self.social = frozenset(self.connector.config.social_sources)

    def fetch(self, request: Request) -> Page:
        response = self.http.get(request[0], request[1], tolerate=(400,))
        if response.status == 400:
            text = error_text(response)
            if PAGE_CAP.search(text):  # the cursor says which second holds more than the cap
                raise PageCapReached(f"Freshdesk: {text}", status=400)
            raise ApiError(f"freshdesk: GET {TICKETS} was rejected (HTTP 400): {text}", status=400)
        return Page(response, records_at(response.data, "", f"GET {TICKETS}"))

    def map(self, item: dict[str, Any]) -> list[Record]:
        config = self.connector.config
        ticket = mapping.ticket(item, self.labels, self.social, self.connector.base_url, config.store_bodies)
        if self.filter:
            return [ticket]
        description = mapping.description(item, config.store_bodies, ticket.channel)
        return [ticket, *mapping.status_events(item, self.labels), description, *self.conversations(item["id"], ticket.channel)]

    def conversations(self, ticket_id: Any, channel: str) -> list[Record]:
        """Replies and notes of one ticket; none when it went (deleted, merged) since listed."""
        agents, config = self.connector.agent_ids(), self.connector.config
        path = f"{TICKETS}/{ticket_id}/conversations"
        return [
            mapping.conversation(item, agents, config.store_bodies, config.count_public_notes_as_replies, channel)
            for page in LIST.pages(self.http, path, PER_PAGE, tolerate=(404,))
            for item in page.items
        ]


class SpamTickets(Tickets):
    name, filter = "spam_tickets", "spam"


class DeletedTickets(Tickets):
    name, filter = "deleted_tickets", "deleted"


class FreshdeskConnector(RestConnector):
    name = "freshdesk"
    title = "Freshdesk"
    kind = "helpdesk"
    config_model = FreshdeskConfig
    description = "Tickets, conversations, status from stats, contacts, CSAT and time entries via API v2."
    check_path = f"{API}/agents/me"
    stream_classes = [
        Agents, Contacts, Groups, Companies, BusinessHours, SlaPolicies, Tickets, SpamTickets, DeletedTickets,
        Ratings, TimeEntries,
    ]  # fmt: skip
    client_options = {"max_attempts": 10}

    config: FreshdeskConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        self.agents: frozenset[str] | None = None
        self._labels: mapping.Labels | None = None
        super().__init__(config, runtime)

    def api_base_url(self) -> str:
        return self.config.url()

    def authenticator(self) -> BasicAuth:
        auth = BasicAuth(self.config.api_key, "X")
        auth.hint = "check api_key (KPISYNC_FRESHDESK_API_KEY: Profile settings → Your API Key) and domain"
        return auth

    def rate_policy(self) -> CreditBudget:
        # Credits per minute from X-RateLimit-Remaining, each call's cost from
        # X-RateLimit-Used-CurrentRequest (1, plus 2 per include); list caps learnt from 429s.
        return CreditBudget(remaining="X-RateLimit-Remaining", cost="X-RateLimit-Used-CurrentRequest", endpoint=_endpoint)

    def check(self) -> None:
        data = self.http.get(self.check_path).data
        if not isinstance(data, dict) or data.get("id") is None:
            raise ConfigError("freshdesk: GET /api/v2/agents/me did not name an agent — check the domain")

    def agent_ids(self) -> frozenset[str]:
        """Ids of agents (message roles); the agents stream leaves them here, else one list read."""
        if self.agents is None:
            pages = LIST.pages(self.http, f"{API}/agents", PER_PAGE)
            self.agents = frozenset(str(a["id"]) for page in pages for a in page.items)
        return self.agents

    def labels(self) -> mapping.Labels:
        """Status and source labels (custom statuses included), one request per run."""
        if self._labels is None:
            path = f"{API}/ticket_fields"
            fields = records_at(self.http.get(path).data, "", f"GET {path}")
            self._labels = mapping.Labels(fields, self.config.status_categories)
        return self._labels
