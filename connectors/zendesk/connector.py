"""Zendesk Support on the connector SDK: bulk incremental exports, no per-ticket calls.

Requests per sync ≈ ⌈T/1000⌉ tickets + ⌈A/1000⌉ ticket events + ⌈U/1000⌉ users + ⌈R/100⌉ ratings
+ ⌈C/1000⌉ + 1 Talk calls + a few small lists, where T, A, U, R, C count what changed. Endpoints,
limits and costs are in README.md beside this file.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import SecretStr, model_validator

from kpisync.core.connector import ConnectorConfig
from kpisync.core.errors import ConfigError
from kpisync.core.httpclient import Runtime, expect
from kpisync.core.models import Record
from kpisync.core.sdk import (
    Auth, BasicAuth, BearerToken, CursorExport, HeaderBudget, MinInterval, NextUrl, Page, Policies, RestConnector,
    RestStream, TimeExport, UpdatedSince,
)  # fmt: skip

from . import mapping
from .ai_agents import AiAgentConversations, AiAgentsSettings
from .talk import CountExport

INCREMENTAL_PATH = "/api/v2/incremental/"
#: [IE] start_time must be > 0; one second after the epoch reads the whole account.
UNIX_START = datetime.fromtimestamp(1, UTC)
#: [IE] cursor exports: start_time once, then `cursor=<after_cursor>` until `end_of_stream`;
#: a start_time less than a minute old answers 422 "Too recent start_time" (nothing new).
CURSOR_EXPORT = CursorExport(earliest=UNIX_START)
#: [PAG] cursor-paginated lists: `links.next` while `meta.has_more`.
LIST_PAGES = NextUrl("links.next", has_more="meta.has_more")
#: [TALK] https://developer.zendesk.com/api-reference/voice/talk-api/incremental_exports/
TALK_CALLS_PATH = "/api/v2/channels/voice/stats/incremental/calls"
#: The Time Tracking app's ticket field titles (support.zendesk.com/hc/en-us/articles/4408822487450).
TIME_TOTAL_TITLE, TIME_LAST_TITLE = "total time spent (sec)", "time spent last update (sec)"


class ZendeskConfig(ConnectorConfig, AiAgentsSettings):
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
    #: Time Tracking app field ids; unset, they are found by title in /api/v2/ticket_fields.
    time_spent_last_update_field_id: int | None = None
    total_time_spent_field_id: int | None = None

    @model_validator(mode="after")
    def _need_target_and_credentials(self) -> ZendeskConfig:
        if not self.subdomain and not self.base_url:
            raise ValueError("set 'subdomain' (or 'base_url')")
        if self.oauth_token is None and (self.email is None or self.api_token is None):
            raise ValueError("set 'email' and 'api_token', or 'oauth_token'")
        return self


class _ZendeskStream(RestStream):
    connector: ZendeskConnector


class Users(_ZendeskStream):
    name = "users"
    path = "/api/v2/incremental/users/cursor.json"
    records_path = "users"
    params = {"per_page": 1000}
    cursor = CURSOR_EXPORT
    read_ahead = True

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.user(item)


class Organizations(_ZendeskStream):
    name = "organizations"
    path = "/api/v2/incremental/organizations.json"
    records_path = "organizations"
    cursor = TimeExport(earliest=UNIX_START)
    read_ahead = True

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.organization(item)


class Groups(_ZendeskStream):
    name = "groups"
    path = "/api/v2/groups.json"
    records_path = "groups"
    params = {"page[size]": 100}
    paginator = LIST_PAGES

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.group(item)


class Schedules(_ZendeskStream):
    """Business-hours schedules and their holidays (one small request per schedule)."""

    name = "schedules"
    path = "/api/v2/business_hours/schedules.json"
    records_path = "schedules"
    optional = True

    def map_page(self, items: list[dict[str, Any]], page: Page) -> list[Record]:
        records: list[Record] = []
        for index, item in enumerate(items):
            path = f"/api/v2/business_hours/schedules/{item['id']}/holidays.json"
            holidays = expect(self.http.get(path).data, "holidays", list, f"GET {path}")
            records.append(mapping.schedule(item, holidays, is_default=index == 0))
        return records

    def unavailable(self, status: int) -> str:
        return "business-hours schedules are not available on this Zendesk plan"


class SlaPolicies(_ZendeskStream):
    name = "sla_policies"
    path = "/api/v2/slas/policies.json"
    records_path = "sla_policies"
    optional = True

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.sla_policy(item)

    def unavailable(self, status: int) -> str:
        return "SLA policies are not available on this Zendesk plan"


class Tickets(_ZendeskStream):
    name = "tickets"
    path = "/api/v2/incremental/tickets/cursor.json"
    records_path = "tickets"
    cursor = CURSOR_EXPORT
    read_ahead = True

    def request_params(self) -> dict[str, Any]:
        return {"per_page": 1000, "include": "metric_sets", "support_type_scope": self.connector.config.support_type_scope}

    def prepare(self) -> None:
        self.connector.agent_ids()

    def map_page(self, items: list[dict[str, Any]], page: Page) -> list[Record]:
        metric_sets = {str(m.get("ticket_id")): m for m in page.response.data.get("metric_sets") or []}
        agents, url = self.connector.agent_ids(), self.connector.base_url
        return [mapping.ticket(item, agents, metric_sets.get(str(item.get("id"))), url) for item in items]


class TicketEvents(_ZendeskStream):
    """Every comment (public and private), status, assignee and group change, macro use."""

    name = "ticket_events"
    path = "/api/v2/incremental/ticket_events.json"
    records_path = "ticket_events"
    params = {"include": "comment_events"}
    # 504s at 1000 a page are known (shared/notes/zendesk-api.md): smaller pages, as Zendesk advises.
    cursor = TimeExport(page_sizes=(1000, 500, 250, 100), earliest=UNIX_START)
    read_ahead = True

    def prepare(self) -> None:
        self.connector.agent_ids()
        self.connector.time_fields()

    def map(self, item: dict[str, Any]) -> Iterable[Record]:
        connector = self.connector
        return mapping.event_records(item, connector.agent_ids(), connector.config.store_bodies, connector.time_fields())

    def notices(self) -> list[str]:
        if self.connector.time_fields() is None:
            return ["Time Tracking app fields not found in /api/v2/ticket_fields: no time entries "
                    "(set time_spent_last_update_field_id if they were renamed)"]  # fmt: skip
        return []


class Ratings(_ZendeskStream):
    """Satisfaction ratings with reason and timestamps; re-reads a lookback for edited ones.
    [SR] pages are newest-last but not ordered by updated_at: the state moves after the last."""

    name = "satisfaction_ratings"
    path = "/api/v2/satisfaction_ratings.json"
    records_path = "satisfaction_ratings"
    params = {"page[size]": 100}
    paginator = LIST_PAGES
    read_ahead = True

    def __init__(self, connector: ZendeskConnector) -> None:
        super().__init__(connector)
        lookback = timedelta(days=connector.config.ratings_lookback_days)
        self.cursor = UpdatedSince("start_time", "updated_at", fmt="unix", ordered=False, lookback=lookback, earliest=UNIX_START)

    def map(self, item: dict[str, Any]) -> Record | None:
        return mapping.rating(item)


class SlaEvents(_ZendeskStream):
    name = "sla_events"
    path = "/api/v2/incremental/ticket_metric_events.json"
    records_path = "ticket_metric_events"
    cursor = TimeExport(page_sizes=(100,), earliest=UNIX_START)
    read_ahead = True

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.sla_event(item)


class Calls(_ZendeskStream):
    """Zendesk Talk calls (talk, hold and wrap-up seconds, answering agent, ticket) [TALK]."""

    name = "calls"
    path = TALK_CALLS_PATH
    records_path = "calls"
    cursor = CountExport(earliest=UNIX_START)
    optional = True
    read_ahead = True

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.call(item)

    def unavailable(self, status: int) -> str:
        return (f"calls: Zendesk Talk is not on this plan or not open to these credentials (HTTP {status}; "
                "admins or agents who can manage channels): handle time counts logged time only")  # fmt: skip


class ZendeskConnector(RestConnector):
    name = "zendesk"
    title = "Zendesk Support"
    kind = "helpdesk"
    config_model = ZendeskConfig
    description = "Tickets, every comment, status history, users, CSAT, SLA events, logged time and Talk calls via incremental exports."
    check_path = "/api/v2/users/me.json"
    stream_classes = [Users, Organizations, Groups, Schedules, SlaPolicies, Tickets, TicketEvents, Ratings, SlaEvents, Calls,
                      AiAgentConversations]

    config: ZendeskConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        self._agents: frozenset[str] | None = None
        self._time_fields: mapping.TimeFields | None | bool = False  # False: not looked up yet
        super().__init__(config, runtime)

    def api_base_url(self) -> str:
        return self.config.base_url or f"https://{self.config.subdomain}.zendesk.com"

    def authenticator(self) -> Auth:
        auth: Auth
        if self.config.oauth_token is not None:
            auth = BearerToken(self.config.oauth_token)
            auth.hint = "check oauth_token (KPISYNC_ZENDESK_OAUTH_TOKEN)"
        else:
            assert self.config.email is not None and self.config.api_token is not None
            auth = BasicAuth(f"{self.config.email}/token", self.config.api_token)
            auth.hint = "check email and api_token (KPISYNC_ZENDESK_EMAIL, KPISYNC_ZENDESK_API_TOKEN); incremental exports need an admin"
        return auth

    def rate_policy(self) -> Policies:
        return Policies(
            MinInterval(self.config.export_requests_per_minute, applies=lambda url: INCREMENTAL_PATH in url),
            MinInterval(10, applies=lambda url: TALK_CALLS_PATH in url),  # [TALK] 10 requests/minute
            HeaderBudget(remaining=("ratelimit-remaining", "x-rate-limit-remaining"), reset=("ratelimit-reset",)),
        )

    def check(self) -> None:
        me = expect(self.http.get(self.check_path).data, "user", dict, f"GET {self.check_path}")
        if me.get("id") is None:
            raise ConfigError("zendesk: the credentials map to an anonymous user — check email and api_token")
        AiAgentConversations(self).check()

    def agent_ids(self) -> frozenset[str]:
        """Ids of agents and admins (comment roles, outbound tickets); read once per run."""
        if self._agents is None:
            params = {"role[]": ["agent", "admin"], "page[size]": 100}
            pages = LIST_PAGES.pages(self.http, "/api/v2/users.json", params, "users")
            self._agents = frozenset(str(u["id"]) for page in pages for u in page.items)
        return self._agents

    def time_fields(self) -> mapping.TimeFields | None:
        """The Time Tracking app's field ids: from the config, else looked up by title once per run."""
        if self._time_fields is False:
            last, total = self.config.time_spent_last_update_field_id, self.config.total_time_spent_field_id
            if last is not None or total is not None:
                found: dict[str, str] = {TIME_LAST_TITLE: str(last) if last else "", TIME_TOTAL_TITLE: str(total) if total else ""}
            else:
                pages = LIST_PAGES.pages(self.http, "/api/v2/ticket_fields.json", {"page[size]": 100}, "ticket_fields")
                found = {str(f.get("title") or "").strip().lower(): str(f["id"]) for page in pages for f in page.items}
            fields = mapping.TimeFields(found.get(TIME_TOTAL_TITLE) or None, found.get(TIME_LAST_TITLE) or None)
            self._time_fields = fields if fields.total or fields.last_update else None
        return self._time_fields  # type: ignore[return-value]
