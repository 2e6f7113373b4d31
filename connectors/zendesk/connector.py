"""Zendesk Support: bulk incremental exports, no per-ticket calls.

Requests per sync ≈ ⌈T/1000⌉ tickets + ⌈A/1000⌉ ticket events + ⌈U/1000⌉ users + ⌈R/100⌉ ratings
+ a few small lists, where T, A, U, R count what changed. Endpoints, limits and costs are in
README.md beside this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Literal

from pydantic import SecretStr, model_validator

from kpisync.core.connector import Batch, Connector, ConnectorConfig, Stream
from kpisync.core.errors import ApiError, ConfigError
from kpisync.core.httpclient import HeaderBudget, HttpClient, MinInterval, Policies, Runtime, expect
from kpisync.core.models import Record
from kpisync.core.prefetch import prefetch
from kpisync.core.timeutil import to_utc, unix

from . import mapping

INCREMENTAL_PATH = "/api/v2/incremental/"
EXPORT_PAGE = 1000
EVENT_PAGE_SIZES = (1000, 500, 250, 100)


class ZendeskConfig(ConnectorConfig):
    """Settings: KPISYNC_ZENDESK_<FIELD> or [sources.zendesk] in kpisync.toml."""

    subdomain: str | None = None
    email: str | None = None
    api_token: SecretStr | None = None
    oauth_token: SecretStr | None = None
    #: Store comment bodies (private notes may hold personal data; no KPI needs them).
    store_bodies: bool = False
    #: Incremental export requests per minute: 10, or 30 with the High Volume API add-on.
    export_requests_per_minute: float = 10
    #: AI-agent tickets are dropped by the export unless the scope is "all".
    support_type_scope: Literal["all", "agent", "ai_agent"] = "all"
    #: Ratings edited within this many days before the last one seen are read again.
    ratings_lookback_days: int = 14

    @model_validator(mode="after")
    def _need_target_and_credentials(self) -> ZendeskConfig:
        if not self.subdomain and not self.base_url:
            raise ValueError("set 'subdomain' (or 'base_url')")
        if self.oauth_token is None and (self.email is None or self.api_token is None):
            raise ValueError("set 'email' and 'api_token', or 'oauth_token'")
        return self


class ZendeskConnector(Connector):
    name = "zendesk"
    title = "Zendesk Support"
    kind = "helpdesk"
    config_model = ZendeskConfig
    description = "Tickets, every comment, status history, users, CSAT and SLA events via incremental exports."

    config: ZendeskConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        assert isinstance(config, ZendeskConfig)
        self.base_url = (config.base_url or f"https://{config.subdomain}.zendesk.com").rstrip("/")
        if config.oauth_token is not None:
            headers = {"Authorization": f"Bearer {config.oauth_token.get_secret_value()}"}
            basic = None
            hint = "check oauth_token (KPISYNC_ZENDESK_OAUTH_TOKEN)"
        else:
            assert config.email is not None and config.api_token is not None
            headers = {}
            basic = (f"{config.email}/token", config.api_token.get_secret_value())
            hint = "check email and api_token (KPISYNC_ZENDESK_EMAIL, KPISYNC_ZENDESK_API_TOKEN); incremental exports need an admin"
        self.http = HttpClient(
            self.base_url,
            runtime,
            name="zendesk",
            headers=headers,
            basic_auth=basic,
            secrets=config.secret_values(),
            auth_hint=hint,
            rate_policy=Policies(
                MinInterval(config.export_requests_per_minute, applies=lambda url: INCREMENTAL_PATH in url),
                HeaderBudget(remaining=("ratelimit-remaining", "x-rate-limit-remaining"), reset=("ratelimit-reset",)),
            ),
        )
        self._agents: frozenset[str] | None = None

    def check(self) -> None:
        data = self.http.get("/api/v2/users/me.json").data
        me = expect(data, "user", dict, "GET /api/v2/users/me.json")
        if me.get("id") is None:
            raise ConfigError("zendesk: the credentials map to an anonymous user — check email and api_token")

    def streams(self) -> list[Stream]:
        return [
            UsersStream(self),
            OrganizationsStream(self),
            GroupsStream(self),
            SchedulesStream(self),
            SlaPoliciesStream(self),
            TicketsStream(self),
            TicketEventsStream(self),
            RatingsStream(self),
            SlaEventsStream(self),
        ]

    def close(self) -> None:
        self.http.close()

    # -- shared helpers ----------------------------------------------------------------------
    def agent_ids(self) -> frozenset[str]:
        """Ids of agents and admins (comment roles, outbound tickets); read once per run."""
        if self._agents is None:
            ids: set[str] = set()
            params: list[tuple[str, Any]] | None = [("role[]", "agent"), ("role[]", "admin"), ("page[size]", 100)]
            url = "/api/v2/users.json"
            while url:
                data = self.http.get(url, params).data
                ids.update(str(u["id"]) for u in expect(data, "users", list, "GET /api/v2/users.json"))
                url, params = _next_link(data), None
            self._agents = frozenset(ids)
        return self._agents

    def start_time(self) -> int:
        start = self.config.start_date
        return max(1, unix(start)) if start is not None else 1

    def list_pages(self, path: str, key: str) -> Iterator[list[dict[str, Any]]]:
        """Pages of a cursor-paginated list (`page[size]` ≤ 100, `links.next`)."""
        url: str | None = path
        params: dict[str, Any] | None = {"page[size]": 100}
        while url:
            data = self.http.get(url, params).data
            yield expect(data, key, list, f"GET {path}")
            url, params = _next_link(data), None


def _next_link(data: dict[str, Any]) -> str | None:
    meta, links = data.get("meta") or {}, data.get("links") or {}
    if meta.get("has_more") and links.get("next"):
        return str(links["next"])
    return data.get("next_page") if "meta" not in data and data.get("next_page") else None


class _ZendeskStream(Stream):
    def __init__(self, connector: ZendeskConnector) -> None:
        self.zd = connector
        self.http = connector.http

    def prepare(self) -> None:
        """Lookups the mapping needs, done before pages are fetched in the background."""


class _CursorExport(_ZendeskStream):
    """A cursor-based incremental export (tickets, users): state is the export's after_cursor."""

    path: str
    key: str
    extra: dict[str, Any] = {}

    def map_page(self, data: dict[str, Any], items: list[dict[str, Any]]) -> list[Record]:
        raise NotImplementedError

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        self.prepare()
        for data, items, new_state in prefetch(self.pages(state)):
            yield Batch(self.map_page(data, items), new_state)

    def pages(self, state: dict[str, Any] | None) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]]:
        params: dict[str, Any] = {"per_page": EXPORT_PAGE, **self.extra}
        if state and state.get("cursor"):
            params["cursor"] = state["cursor"]
        else:
            params["start_time"] = self.zd.start_time()
        while True:
            response = self.http.get(self.path, params, tolerate=(422,))
            if response.status == 422:  # "Too recent start_time": nothing to export yet
                return
            items = expect(response.data, self.key, list, f"GET {self.path}")
            cursor = response.data.get("after_cursor")
            yield response.data, items, ({"cursor": cursor} if cursor else None)
            if response.data.get("end_of_stream") or not cursor:
                return
            params = {"per_page": EXPORT_PAGE, **self.extra, "cursor": cursor}


class TicketsStream(_CursorExport):
    name = "tickets"
    path = "/api/v2/incremental/tickets/cursor.json"
    key = "tickets"

    def __init__(self, connector: ZendeskConnector) -> None:
        super().__init__(connector)
        self.extra = {"include": "metric_sets", "support_type_scope": connector.config.support_type_scope}

    def prepare(self) -> None:
        self.zd.agent_ids()

    def map_page(self, data: dict[str, Any], items: list[dict[str, Any]]) -> list[Record]:
        metric_sets = {str(m.get("ticket_id")): m for m in data.get("metric_sets") or []}
        agents = self.zd.agent_ids()
        return [
            mapping.ticket(item, agents, metric_sets.get(str(item.get("id"))), self.zd.base_url)
            for item in items
        ]


class UsersStream(_CursorExport):
    name = "users"
    path = "/api/v2/incremental/users/cursor.json"
    key = "users"

    def map_page(self, data: dict[str, Any], items: list[dict[str, Any]]) -> list[Record]:
        return [mapping.user(item) for item in items]


class _TimeExport(_ZendeskStream):
    """A time-based incremental export: state is the last `end_time`; pages may overlap at the
    boundary (the API repeats items with the same timestamp), which the upsert absorbs."""

    path: str
    key: str
    page_sizes: tuple[int, ...] = (EXPORT_PAGE,)
    extra: dict[str, Any] = {}

    def map_items(self, items: list[dict[str, Any]]) -> list[Record]:
        raise NotImplementedError

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        self.prepare()
        for items, end_time in prefetch(self.pages(state)):
            yield Batch(self.map_items(items), {"start_time": end_time})

    def pages(self, state: dict[str, Any] | None) -> Iterator[tuple[list[dict[str, Any]], int]]:
        start = int(state["start_time"]) if state and "start_time" in state else self.zd.start_time()
        size_index = 0
        while True:
            per_page = self.page_sizes[size_index]
            params = {"start_time": start, "per_page": per_page, **self.extra}
            response = self.http.get(self.path, params, tolerate=(422, 504), retry_statuses=(409, 429, 500, 502, 503))
            if response.status == 422:
                return
            if response.status == 504:  # big pages time out: drop to a smaller page, as Zendesk advises
                if size_index + 1 >= len(self.page_sizes):
                    raise ApiError(f"zendesk: {self.path} times out (504) even at {per_page} per page", status=504)
                size_index += 1
                continue
            items = expect(response.data, self.key, list, f"GET {self.path}")
            end_time = response.data.get("end_time")
            if end_time is None:
                raise ApiError(f"zendesk: {self.path} answered without end_time")
            end_time = int(end_time)
            yield items, end_time
            if response.data.get("end_of_stream"):
                return
            if end_time <= start:
                # More than a page of items share one timestamp: the export cannot move on.
                if size_index > 0:
                    size_index -= 1
                    continue
                raise ApiError(
                    f"zendesk: {self.path} is stuck at start_time={start}: more than {per_page} items "
                    "share that second; ask Zendesk support or use a larger page"
                )
            start = end_time


class TicketEventsStream(_TimeExport):
    """Every comment (public and private), status, assignee and group change, macro use."""

    name = "ticket_events"
    path = "/api/v2/incremental/ticket_events.json"
    key = "ticket_events"
    page_sizes = EVENT_PAGE_SIZES
    extra = {"include": "comment_events"}

    def prepare(self) -> None:
        self.zd.agent_ids()

    def map_items(self, items: list[dict[str, Any]]) -> list[Record]:
        agents = self.zd.agent_ids()
        bodies = self.zd.config.store_bodies
        return [record for event in items for record in mapping.event_records(event, agents, bodies)]


class OrganizationsStream(_TimeExport):
    name = "organizations"
    path = "/api/v2/incremental/organizations.json"
    key = "organizations"

    def map_items(self, items: list[dict[str, Any]]) -> list[Record]:
        return [mapping.organization(item) for item in items]


class SlaEventsStream(_TimeExport):
    name = "sla_events"
    path = "/api/v2/incremental/ticket_metric_events.json"
    key = "ticket_metric_events"
    page_sizes = (100,)

    def map_items(self, items: list[dict[str, Any]]) -> list[Record]:
        return [mapping.sla_event(item) for item in items]


class GroupsStream(_ZendeskStream):
    name = "groups"

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        for page in self.zd.list_pages("/api/v2/groups.json", "groups"):
            yield Batch([mapping.group(g) for g in page])


class SlaPoliciesStream(_ZendeskStream):
    name = "sla_policies"

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        response = self.http.get("/api/v2/slas/policies.json", tolerate=(403, 404))
        if response.status in (403, 404):
            yield Batch([], notices=["SLA policies are not available on this Zendesk plan"])
            return
        policies = expect(response.data, "sla_policies", list, "GET /api/v2/slas/policies.json")
        yield Batch([mapping.sla_policy(p) for p in policies])


class SchedulesStream(_ZendeskStream):
    """Business-hours schedules and their holidays (one small request per schedule)."""

    name = "schedules"

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        response = self.http.get("/api/v2/business_hours/schedules.json", tolerate=(403, 404))
        if response.status in (403, 404):
            yield Batch([], notices=["business-hours schedules are not available on this Zendesk plan"])
            return
        schedules = expect(response.data, "schedules", list, "GET /api/v2/business_hours/schedules.json")
        records: list[Record] = []
        for index, item in enumerate(schedules):
            path = f"/api/v2/business_hours/schedules/{item['id']}/holidays.json"
            holidays = expect(self.http.get(path).data, "holidays", list, f"GET {path}")
            records.append(mapping.schedule(item, holidays, is_default=index == 0))
        yield Batch(records)


class RatingsStream(_ZendeskStream):
    """Satisfaction ratings with reason and timestamps; re-reads a lookback for edited ones."""

    name = "satisfaction_ratings"
    path = "/api/v2/satisfaction_ratings.json"

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        since = int(state["since"]) if state and "since" in state else self.zd.start_time()
        lookback = int(timedelta(days=self.zd.config.ratings_lookback_days).total_seconds())
        start = max(1, since - lookback) if state else since
        newest = since
        url: str | None = self.path
        params: dict[str, Any] | None = {"start_time": start, "page[size]": 100}
        while url:
            data = self.http.get(url, params).data
            items = expect(data, "satisfaction_ratings", list, f"GET {self.path}")
            for item in items:
                stamp = to_utc(item.get("updated_at") or item.get("created_at"))
                if stamp is not None:
                    newest = max(newest, int(stamp.timestamp()))
            url, params = _next_link(data), None
            records = [r for r in (mapping.rating(item) for item in items) if r is not None]
            # The state moves only once the last page is in: pages are newest-last but not
            # guaranteed ordered by updated_at, so a partial read restarts from the old state.
            yield Batch(records, {"since": newest} if url is None else None)
