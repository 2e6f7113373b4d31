"""Helprace: a full scan of the ticket list, diffed against what the last sync saw.

Helprace's API has no incremental filter, no sort by update time and no status history, so
every sync pages through all tickets (⌈T/100⌉ requests) and keeps a 12-hex fingerprint of each
ticket's payload in the stream state. Only tickets whose fingerprint changed cost a replies
request; tickets that stopped being listed are confirmed with one `GET /tickets/{id}` each and,
on a 404, tombstoned (flagged `is_deleted`). A ticket's fingerprint is committed in the same
batch as its replies, so a kill at any point only repeats work. Endpoints, confirmed facts and
assumptions are in README.md beside this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field, SecretStr, model_validator

from kpisync.core.connector import Batch, Connector, ConnectorConfig, Stream
from kpisync.core.errors import ApiError, MalformedPayload
from kpisync.core.httpclient import HttpClient, MinInterval, Runtime
from kpisync.core.models import Record
from kpisync.core.timeutil import utcnow

from . import mapping
from .records import Tombstone

API = "/api/v1/"
TICKETS = API + "tickets/"
USERS = API + "users/"
STATE_VERSION = 1
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


class _Gone(Exception):
    """The item answered 404: it was deleted (or marked spam) since it was listed."""


class HelpraceConnector(Connector):
    name = "helprace"
    title = "Helprace"
    kind = "helpdesk"
    config_model = HelpraceConfig
    description = "Tickets, replies and internal notes, users and teams; full scan diffed by fingerprint (no incremental API)."

    config: HelpraceConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        assert isinstance(config, HelpraceConfig) and config.email and config.api_key
        self.base_url = (config.base_url or f"https://{config.subdomain}.helprace.com").rstrip("/")
        self.http = HttpClient(
            self.base_url,
            runtime,
            name="helprace",
            basic_auth=(f"{config.email}/api_key", config.api_key.get_secret_value()),
            secrets=config.secret_values(),
            auth_hint=(
                "check email and api_key (KPISYNC_HELPRACE_EMAIL, KPISYNC_HELPRACE_API_KEY); "
                "the key is under Settings > Integrations > API in Helprace"
            ),
            rate_policy=MinInterval(config.requests_per_minute),
        )
        self._agents: frozenset[str] | None = None

    def check(self) -> None:
        next(self.pages(USERS, "users", page_size=1))

    def streams(self) -> list[Stream]:
        return [UsersStream(self), TicketsStream(self)]

    def close(self) -> None:
        self.http.close()

    # -- shared helpers ----------------------------------------------------------------------
    def pages(
        self, path: str, key: str, params: dict[str, Any] | None = None, *, page_size: int | None = None,
        missing_ok: bool = False,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of a list: `{key: {current_page, last_page, per_page, data}}` (or a bare list).

        Ends at `last_page` when the paginator says it, else at the first short or empty page.
        `missing_ok`: a 404 raises `_Gone` instead of an ApiError.
        """
        size = page_size or self.config.page_size
        page, previous_ids = 1, None
        while True:
            response = self.http.get(path, {**(params or {}), "page": page, "per_page": size},
                                     tolerate=(404,) if missing_ok else ())  # fmt: skip
            if response.status == 404:
                raise _Gone(path)
            items, meta = _unwrap_list(response.data, key, f"GET {path}")
            yield items
            ids = [item.get("id") for item in items]
            if not items:
                return
            if ids == previous_ids:
                raise ApiError(f"helprace: GET {path} answered page {page} like page {page - 1}; paging is not honoured")
            previous_ids = ids
            current, last, per_page = meta.get("current_page"), meta.get("last_page"), meta.get("per_page")
            if isinstance(current, int) and isinstance(last, int):
                if current >= last:
                    return
            elif isinstance(per_page, int) and len(items) < per_page:
                return
            page += 1

    def agent_ids(self) -> frozenset[str]:
        """Ids of owners, admins and agents: who is an agent in replies; read once per run."""
        if self._agents is None:
            self._agents = frozenset(
                str(item["id"]) for items in self.pages(USERS, "users") for item in items if mapping.is_agent(item)
            )
        return self._agents

    def remember_agents(self, ids: set[str]) -> None:
        self._agents = frozenset(ids)


def _unwrap_list(data: Any, key: str, what: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    container = data.get(key) if isinstance(data, dict) else None
    if isinstance(container, list):
        return container, {}
    if isinstance(container, dict) and isinstance(container.get("data"), list):
        return container["data"], container
    raise MalformedPayload(f"malformed response from {what}: expected '{key}' with a 'data' list")


def _unwrap_item(data: Any, key: str, what: str) -> dict[str, Any]:
    item = data.get(key, data) if isinstance(data, dict) else None
    if not isinstance(item, dict) or "id" not in item:
        raise MalformedPayload(f"malformed response from {what}: expected a '{key}' object")
    return item


class UsersStream(Stream):
    """Agents and end users with their organizations; a full listing every run (no filter)."""

    name = "users"

    def __init__(self, connector: HelpraceConnector) -> None:
        self.hr = connector

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        agents: set[str] = set()
        orgs_sent: set[str] = set()
        for items in self.hr.pages(USERS, "users"):
            records: list[Record] = []
            for item in items:
                records.append(mapping.user(item))
                if mapping.is_agent(item):
                    agents.add(str(item["id"]))
                org = item.get("organization")
                if isinstance(org, dict) and org.get("id") is not None and str(org["id"]) not in orgs_sent:
                    orgs_sent.add(str(org["id"]))
                    records.append(mapping.organization(org))
            yield Batch(records)
        self.hr.remember_agents(agents)


class TicketsStream(Stream):
    """Tickets, replies, internal notes, teams and synthetic status events.

    State: `{"v": 1, "tickets": {id: "<fingerprint>|<status>"}}` — about 25 bytes a ticket.
    Changed tickets are committed in batches of at least a page and at least 1/20 of the known
    tickets, so the state (rewritten with each batch) costs ~20× its size per full sync at most.
    """

    name = "tickets"

    def __init__(self, connector: HelpraceConnector) -> None:
        self.hr = connector
        self.http = connector.http
        self._teams_sent: set[str] = set()

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        known: dict[str, str] = dict((state or {}).get("tickets") or {})
        agents = self.hr.agent_ids()
        start = self.hr.config.start_date
        seen: set[str] = set()
        self._teams_sent = set()
        pending: list[Record] = []
        changed = 0
        params = {"sort_by": "created", "sort_order": "desc"}
        for items in self.hr.pages(TICKETS, "tickets", params):
            for item in items:
                if not isinstance(item, dict) or item.get("id") is None:
                    raise MalformedPayload(f"malformed response from GET {TICKETS}: a ticket without an id")
                tid = str(item["id"])
                if tid in seen or (start is not None and mapping.created_of(item) < start):
                    continue
                seen.add(tid)
                changed += self._read_ticket(item, known, agents, seen, pending)
            if changed and changed >= max(self.hr.config.page_size, len(known) // 20):
                yield Batch(pending, self._state(known))
                pending, changed = [], 0
            if start is not None and _older_than(items, start):
                break  # sorted newest first: everything after this page is older still
        vanished = 0
        for tid in sorted(set(known) - seen, key=_id_order):
            response = self.http.get(f"{TICKETS}{tid}", tolerate=(404,))
            if response.status == 404:
                pending.append(Tombstone.of("tickets", tid, utcnow(), f"not listed; GET {TICKETS}{tid} answered 404"))
                del known[tid]
                vanished += 1
                continue
            item = _unwrap_item(response.data, "ticket", f"GET {TICKETS}{tid}")
            seen.add(tid)  # skipped by the listing (it moved while we paged)
            self._read_ticket(item, known, agents, seen, pending)
        notices = [CSAT_NOTICE]
        if vanished:
            notices.append(f"{vanished} ticket(s) no longer returned by Helprace (404) were marked deleted")
        yield Batch(pending, self._state(known), notices=notices)

    def _read_ticket(
        self, item: dict[str, Any], known: dict[str, str], agents: frozenset[str], seen: set[str], out: list[Record]
    ) -> int:
        """Append the records of a changed ticket to `out` and remember its fingerprint; 1 if changed."""
        tid = str(item["id"])
        fp, status = mapping.fingerprint(item), mapping.status_of(item)
        previous = known.get(tid)
        if previous is not None and previous.split("|", 1)[0] == fp:
            return 0
        try:
            replies = [r for page in self.hr.pages(f"{TICKETS}{tid}/replies", "replies", missing_ok=True) for r in page]
        except _Gone:
            seen.discard(tid)  # deleted since it was listed: the vanished check confirms it
            return 0
        bodies = self.hr.config.store_bodies
        out.append(mapping.ticket(item, agents, bodies))
        first = mapping.description(item, replies, agents, bodies)
        if first is not None:
            out.append(first)
        out.extend(mapping.reply(r, tid, agents, bodies) for r in replies)
        out.extend(mapping.status_events(item, previous.split("|", 1)[1] if previous else None))
        team = item.get("team")
        if isinstance(team, dict) and team.get("id") is not None and str(team["id"]) not in self._teams_sent:
            self._teams_sent.add(str(team["id"]))
            out.append(mapping.group(team))
        known[tid] = f"{fp}|{status}"
        return 1

    @staticmethod
    def _state(known: dict[str, str]) -> dict[str, Any]:
        return {"v": STATE_VERSION, "tickets": dict(known)}


def _older_than(items: list[dict[str, Any]], start: Any) -> bool:
    """True when the page is sorted newest first and ends before `start`."""
    times = [mapping.created_of(item) for item in items]
    return bool(times) and times[-1] < start and all(a >= b for a, b in zip(times, times[1:]))


def _id_order(tid: str) -> tuple[int, str]:
    return (int(tid), "") if tid.isdigit() else (1 << 62, tid)
