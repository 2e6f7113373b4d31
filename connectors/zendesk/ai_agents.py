"""Zendesk AI agents (Advanced add-on): the Data Export API, one JSON file set per UTC day.

Optional: the stream runs only when the AI agents credentials are set (organization id, bot id,
API key); without them it ends with a notice. What it relies on, and where the docs are silent:

* [DX-REF] https://developer.zendesk.com/api-reference/ai-agents/data-export/data-export —
  `POST /data-export/v3/get-signed-urls`, headers `authorization` (the API token), `organizationid`,
  `botid`; body `{"date": "YYYY-MM-DD", "ttl": minutes}`; 200 "returns the requested date and a
  list of signed URLs", 400 for an invalid body, 500. The name of the list's key is not given:
  kpisync reads `urls` (what clients of the live API read) and also accepts `signed_urls`.
* [DX-GUIDE] https://developer.zendesk.com/documentation/ai-agents/getting-started/data-export —
  the API returns time-limited URLs of the day's files; download them before they expire.
* [DX-HC] https://support.zendesk.com/hc/en-us/articles/8357749376922 ("Using the Data Export API
  for advanced AI agents") — EU host `api.ultimate.ai`, US host `api.us.ultimate.ai`; the export
  is refreshed once a day at 00:00 UTC; only dates within the last 30 days can be requested; 401
  when access is refused; each file is a JSON list of objects, one per conversation, with
  `bot_id`, `bot_name`, `conversation_id`, ... (see `conversation` below for the fields read).
* [AR] https://support.zendesk.com/hc/en-us/articles/8357756668186 — an automated resolution is a
  conversation resolved without a human agent and verified by an LLM: "Automated resolutions are
  evaluated at the end of the conversation session duration, which is configurable for a chat AI
  agent and 72 hours after the arrival of the first message for a ticket AI agent".

State `{"day": "YYYY-MM-DD", "unsettled": [days]}`: `day` = the last complete UTC day exported. A
run exports each complete day after it (never today: the file is built after midnight UTC), one
day's files per batch and the state on its last file, so a kill re-exports at most that day, and
upserts make that exact.

Late verdicts, why a day is read twice: a day exported when it completes still holds ticket AI
agents' conversations that [AR] has not evaluated yet (null verdict); exported only then, they
would stay null for good and understate the vendor's automated resolutions. Such a day goes
into `unsettled` and is exported once more when it has settled — at the first daily build
([DX-HC]: 00:00 UTC) at or after the day's end + `ai_agents_settle_hours` (72 h: every
conversation of the day began before its end, so its verdict exists by then) — and then leaves
the list. A run first re-exports the settled days of the list, oldest first (the last file of
each removes it, so a kill repeats at most that day), then the new days. Cost: at most one more
POST + the day's files per day, ever; a run on a day when nothing settles or completes makes
no request. A day that leaves the 30-day window before it settles keeps its null verdicts (a
notice says so). A state without `unsettled` (written before this) is continued as having none:
its older days are not read again. That a day's file is rebuilt with verdicts that came later
is not documented — it is what this relies on; upserts by conversation id store the verdict.

The signed URLs point at another host: they are fetched by a client of their own that carries
no API key, with the same retries; an expired URL (403) is replaced by asking for the day again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator

from kpisync.core.connector import Batch, Stream
from kpisync.core.errors import ApiError, MalformedPayload
from kpisync.core.httpclient import HttpClient
from kpisync.core.models import BotConversation
from kpisync.core.sdk import ApiKeyHeader, NoAuth, api_client
from kpisync.core.timeutil import utcnow

if TYPE_CHECKING:
    from .connector import ZendeskConnector

#: [DX-HC] one host per data region.
HOSTS = {"eu": "https://api.ultimate.ai", "us": "https://api.us.ultimate.ai"}
SIGNED_URLS_PATH = "/data-export/v3/get-signed-urls"
#: [DX-HC] "you can request data for dates within 30 days of the current date".
WINDOW_DAYS = 30
#: Signed-URL lifetime asked for ([DX-REF] `ttl`, minutes): the day [DX-HC] gives by default.
URL_TTL_MINUTES = 24 * 60
#: Session variables: may hold the customer's e-mail or name, and no KPI needs them.
PRIVATE_KEYS = ("conversation_data", "conversations_data")


class AiAgentsSettings(BaseModel):
    """The AI agents export's own credentials (AI agents - Advanced ▸ Organization management)."""

    ai_agents_organization_id: str | None = None
    ai_agents_bot_id: str | None = None
    ai_agents_api_key: SecretStr | None = None
    ai_agents_region: Literal["eu", "us"] = "eu"
    #: Another export host (a proxy, or a simulator in tests); default: the region's host.
    ai_agents_base_url: str | None = None
    #: Hours after a day's end when its verdicts are final ([AR]: 72 h after the first message for
    #: ticket AI agents; raise it if a chat session is configured longer). 0: export each day once.
    ai_agents_settle_hours: int = Field(72, ge=0, le=24 * (WINDOW_DAYS - 2))

    @model_validator(mode="after")
    def _all_or_none(self) -> AiAgentsSettings:
        given = [self.ai_agents_organization_id, self.ai_agents_bot_id, self.ai_agents_api_key]
        if any(v is not None for v in given) and not all(v is not None for v in given):
            raise ValueError("set all of 'ai_agents_organization_id', 'ai_agents_bot_id' and 'ai_agents_api_key', or none")
        return self

    @property
    def ai_agents_enabled(self) -> bool:
        return self.ai_agents_api_key is not None


def conversation(item: dict[str, Any], day: date) -> BotConversation | None:
    """One exported conversation → BotConversation. `conversation_id`, `bot_id` are named in
    [DX-HC]; `conversation_start_time`, `conversation_end_time`, `channel`, `language`,
    `conversation_status` and `automated_resolution` are the names clients of the live export
    read. The docs we could read name no escalation or ticket field: `escalated` is read from
    an `escalated` flag, else a status naming an escalation, and the ticket from `ticket_id`
    (both unverified; a missing field leaves the column null, never a guess)."""
    ident = item.get("conversation_id")
    if ident in (None, ""):
        return None
    status = item.get("conversation_status")
    escalated = item.get("escalated")
    if escalated is None and isinstance(status, str):
        escalated = "escalat" in status.lower()
    return BotConversation(
        external_id=str(ident),
        bot_id=item.get("bot_id"),
        started_at=item.get("conversation_start_time") or None,
        ended_at=item.get("conversation_end_time") or None,
        export_day=day.isoformat(),
        channel=item.get("channel"),
        language=item.get("language"),
        status=status,
        escalated=_flag(escalated),
        ticket_id=item.get("ticket_id") or None,
        automated_resolution=_flag(item.get("automated_resolution")),
        raw={k: v for k, v in item.items() if k not in PRIVATE_KEYS},
    )


def _flag(value: Any) -> bool | None:
    """A boolean the export may send as true/false or as text ("true", "false")."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in ("true", "1", "yes") else False if text in ("false", "0", "no") else None


def _state(day: str | None, unsettled: list[date]) -> dict[str, Any]:
    return {"day": day, "unsettled": [d.isoformat() for d in unsettled]}


def _days_text(days: list[date]) -> str:
    return ("day " if len(days) == 1 else "days ") + ", ".join(d.isoformat() for d in days)


def _file_name(url: str) -> str:
    """What of a signed URL may be shown: its file name, never the signature."""
    return urlsplit(url).path.rsplit("/", 1)[-1]


class AiAgentConversations(Stream):
    """Every AI-agent conversation of the configured bot, day by complete UTC day."""

    name = "ai_agent_conversations"

    def __init__(self, connector: ZendeskConnector) -> None:
        self.connector = connector
        self.settings = connector.config
        self._api: HttpClient | None = None
        self._files: HttpClient | None = None

    def now(self) -> datetime:
        return utcnow()

    # -- clients -----------------------------------------------------------------------------
    def api(self) -> HttpClient:
        if self._api is None:
            s = self.settings
            assert s.ai_agents_api_key is not None
            auth = ApiKeyHeader("authorization", s.ai_agents_api_key)
            auth.hint = ("check ai_agents_api_key, ai_agents_organization_id and ai_agents_bot_id "
                         "(KPISYNC_ZENDESK_AI_AGENTS_API_KEY, ...); the key is shown once when generated")  # fmt: skip
            headers = {"organizationid": str(s.ai_agents_organization_id), "botid": str(s.ai_agents_bot_id)}
            base = s.ai_agents_base_url or HOSTS[s.ai_agents_region]
            self._api = api_client(self.connector, base, auth, headers=headers)
        return self._api

    def files(self) -> HttpClient:
        """The signed-URL host: no API key, no Zendesk credentials, the same retries."""
        if self._files is None:
            base = self.settings.ai_agents_base_url or HOSTS[self.settings.ai_agents_region]
            self._files = api_client(self.connector, base, NoAuth())
        return self._files

    def close(self) -> None:
        for client in (self._api, self._files):
            if client is not None:
                client.close()

    def check(self) -> None:
        """One POST for yesterday's URLs, so a refused key fails `kpisync pull` up front in one
        line (a plan without the export is left to the stream's notice)."""
        if not self.settings.ai_agents_enabled:
            return
        try:
            self._signed_urls(self.now().date() - timedelta(days=1))
        except _Unavailable:
            pass
        finally:
            self.close()

    # -- the contract -------------------------------------------------------------------------
    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        if not self.settings.ai_agents_enabled:
            yield Batch([], notices=[
                "ai_agent_conversations: skipped — set ai_agents_organization_id, ai_agents_bot_id and "
                "ai_agents_api_key (AI agents - Advanced) to pull the vendor's automated resolutions"])  # fmt: skip
            return
        try:
            yield from self._days(state)
        except _Unavailable as exc:
            yield Batch([], notices=[
                f"ai_agent_conversations: the AI agents data export refused these credentials or is not on "
                f"this plan (HTTP {exc.status}): no vendor automated resolutions"])  # fmt: skip
        finally:
            self.close()

    def _days(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        now = self.now()
        today = now.date()
        last = today - timedelta(days=1)
        earliest = today - timedelta(days=WINDOW_DAYS)
        saved = (state or {}).get("day")
        unsettled = sorted({date.fromisoformat(d) for d in (state or {}).get("unsettled") or []})
        if saved:
            first = date.fromisoformat(saved) + timedelta(days=1)
        else:
            start = self.settings.start_date
            first = max(start.date(), earliest) if start is not None else earliest
        lost = [d for d in unsettled if d < earliest]
        if lost:
            unsettled = [d for d in unsettled if d >= earliest]
            yield Batch([], _state(saved, unsettled), notices=[
                f"ai_agent_conversations: {_days_text(lost)} left the export's {WINDOW_DAYS}-day window before their "
                f"automated-resolution verdicts settled: conversations still without a verdict keep none"])  # fmt: skip
        if first < earliest:
            gone = f"{first.isoformat()} to {(earliest - timedelta(days=1)).isoformat()}"
            yield Batch([], notices=[f"ai_agent_conversations: days {gone} are older than the export's "
                                     f"{WINDOW_DAYS}-day window and can no longer be pulled"])  # fmt: skip
            first = earliest
        # Settled days first, oldest first: each leaves the list with its last file.
        for day in [d for d in unsettled if self._settled(d, now)]:
            unsettled = [d for d in unsettled if d != day]
            yield from self._export(day, _state(saved, unsettled), earliest)
        day = first
        while day <= last:
            if not self._settled(day, now):
                unsettled = [*unsettled, day]
            yield from self._export(day, _state(day.isoformat(), unsettled), earliest)
            day += timedelta(days=1)

    def _settled(self, day: date, now: datetime) -> bool:
        """Every verdict of `day` is in the files: the first daily build ([DX-HC], 00:00 UTC) at or
        after the day's end + the evaluation delay has happened."""
        ready = datetime(day.year, day.month, day.day, tzinfo=now.tzinfo) + timedelta(
            days=1, hours=self.settings.ai_agents_settle_hours)  # fmt: skip
        build = datetime(ready.year, ready.month, ready.day, tzinfo=now.tzinfo)
        return now >= (build if build == ready else build + timedelta(days=1))

    def _export(self, day: date, done: dict[str, Any], earliest: date) -> Iterator[Batch]:
        """One day's files, `done` saved with the last; a day refused at the window's edge is lost."""
        try:
            yield from self._day(day, done)
        except ApiError as exc:
            # The window moves at 00:00 UTC (and the export host's clock is not ours): a day
            # at its old edge can be refused by the time it is asked for. It is lost, not an error.
            if exc.status != 400 or day > earliest + timedelta(days=1):
                raise
            yield Batch([], done, notices=[
                f"ai_agent_conversations: {day.isoformat()} left the export's {WINDOW_DAYS}-day window before "
                f"it was pulled (HTTP 400) and can no longer be pulled"])  # fmt: skip

    def _day(self, day: date, done: dict[str, Any]) -> Iterator[Batch]:
        """One day's files; the state moves to `done` with the last of them."""
        urls = self._signed_urls(day)
        if not urls:
            yield Batch([], done)
        for index, url in enumerate(urls):
            items = self._download(url, day)
            records = [r for r in (conversation(i, day) for i in items) if r is not None]
            yield Batch(records, done if index == len(urls) - 1 else None)

    def _signed_urls(self, day: date) -> list[str]:
        """[DX-REF] the day's signed URLs; 403/404 (no export for this plan or key) ends the stream."""
        response = self.api().request(
            "POST", SIGNED_URLS_PATH, json_body={"date": day.isoformat(), "ttl": URL_TTL_MINUTES}, tolerate=(403, 404)
        )
        if response.status in (403, 404):
            raise _Unavailable(response.status)
        data = response.data if isinstance(response.data, dict) else {}
        urls = data.get("urls", data.get("signed_urls"))
        if not isinstance(urls, list):
            raise MalformedPayload(f"malformed response from POST {SIGNED_URLS_PATH}: expected a list of signed URLs")
        return [u["url"] if isinstance(u, dict) else str(u) for u in urls]

    def _download(self, url: str, day: date) -> list[dict[str, Any]]:
        """A day file; an expired URL (403) is asked for again once, matched by its file name."""
        for attempt in range(2):
            response = self.files().get(url, tolerate=(403,))
            if response.status != 403:
                if not isinstance(response.data, list):
                    raise MalformedPayload(f"malformed AI agents export file {_file_name(url)}: expected a JSON list")
                return response.data
            if attempt == 0:
                fresh = [u for u in self._signed_urls(day) if _file_name(u) == _file_name(url)]
                if not fresh:
                    break
                url = fresh[0]
        raise ApiError(f"{self.connector.name}: AI agents export file {_file_name(url)} of {day} refused (HTTP 403) "
                       "even with a fresh signed URL")  # fmt: skip


class _Unavailable(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status
