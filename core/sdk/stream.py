"""`RestStream` and `RestConnector`: a help-desk stream in a few declarative lines.

    class Customers(RestStream):
        name = "customers"
        path = "/v2/customers"
        records_path = "_embedded.customers"
        paginator = NextUrl("_links.next.href")
        cursor = UpdatedSince("modifiedSince", "updatedAt", overlap=timedelta(seconds=1))
        params = {"sortField": "modifiedAt", "sortOrder": "asc"}

        def map(self, item):
            return mapping.customer(item)

    class Acme(RestConnector):
        name, title = "acme", "Acme Desk"
        config_model = AcmeConfig
        check_path = "/v2/users/me"
        stream_classes = [Customers, ...]

        def authenticator(self):
            return BearerToken(self.config.token)

The stream pages through `path` with its paginator, lets its cursor pick the slice and the
state, maps each item to canonical records and yields one Batch per page: the engine commits a
page's records with the state after them. A plan-gated endpoint (`optional = True`) that
answers 403/404 becomes a notice instead of a failure. `read_ahead = True` fetches the next page
in a background thread while this one is mapped and written (core/prefetch.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, ClassVar

from ..connector import Batch, Connector, ConnectorConfig, Stream
from ..errors import ConfigError
from ..httpclient import HttpClient, RatePolicy, Runtime
from ..models import Record
from ..prefetch import prefetch
from ..timeutil import utcnow
from .auth import Auth, NoAuth
from .incremental import Cursor
from .paginate import Page, Paginator, Request, SinglePage, records_at


def api_client(
    connector: Connector,
    base_url: str,
    auth: Auth,
    *,
    rate_policy: RatePolicy | None = None,
    **options: Any,
) -> HttpClient:
    """An HttpClient for `connector` with `auth` on every request and every secret redacted."""
    secrets = [*connector.config.secret_values(), *auth.secrets()]
    client = HttpClient(
        base_url, connector.runtime, name=connector.name, secrets=secrets,
        rate_policy=rate_policy, auth_hint=auth.hint, **options,
    )  # fmt: skip
    client.session.auth = auth
    auth.bind(client)
    return client


class RestStream(Stream):
    """One REST list read page by page; subclasses set the class attributes and `map`."""

    path: ClassVar[str]
    #: Where the list is in the body: "tickets", "_embedded.conversations"; "" = the body.
    records_path: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    paginator: Paginator = SinglePage()
    cursor: Cursor = Cursor()
    #: Plan- or permission-gated: 403/404 is a notice, not a failure.
    optional: ClassVar[bool] = False
    #: Fetch the next page while the current one is mapped and written. Only for streams whose
    #: `map` makes no HTTP call (lookups go in `prepare`): the session stays on one thread.
    #: States still travel with their own page, so exactness is unchanged.
    read_ahead: ClassVar[bool] = False

    def __init__(self, connector: RestConnector) -> None:
        self.connector = connector
        self.http = connector.http

    # -- what subclasses override -------------------------------------------------------------
    def map(self, item: dict[str, Any]) -> Record | Iterable[Record] | None:
        """Canonical records of one item (a record, several, or None to skip it)."""
        raise NotImplementedError

    def map_page(self, items: list[dict[str, Any]], page: Page) -> list[Record]:
        """Records of a page; override to use data outside the items (sideloads)."""
        out: list[Record] = []
        for item in items:
            mapped = self.map(item)
            if mapped is None:
                continue
            if isinstance(mapped, Record):
                out.append(mapped)
            else:
                out.extend(mapped)
        return out

    def request_params(self) -> dict[str, Any]:
        """Query of every request (override for values from the config)."""
        return dict(self.params)

    def notices(self) -> list[str]:
        """Things to tell the user once the stream is done (unknown enum values, say)."""
        return []

    def prepare(self) -> None:
        """Lookups `map` needs (an agents list), done before any page is read (ahead)."""

    def unavailable(self, status: int) -> str:
        """The notice of an optional stream the API refuses (403/404)."""
        return f"{self.name}: not available to these credentials or on this plan (HTTP {status})"

    # -- helpers cursors use ------------------------------------------------------------------
    def start_date(self) -> datetime | None:
        return self.connector.config.start_date

    def now(self) -> datetime:
        return utcnow()

    @property
    def tolerate(self) -> tuple[int, ...]:
        return (403, 404) if self.optional else ()

    def safe_url(self, url: str) -> str:
        """A next-page URL fit for the stream state: credentials the auth put in it removed."""
        auth = self.http.session.auth
        return auth.strip(url) if isinstance(auth, Auth) else url

    def fetch(self, request: Request) -> Page:
        response = self.http.get(request[0], request[1], tolerate=self.tolerate)
        if response.status >= 400:
            return Page(response, [])
        return Page(response, records_at(response.data, self.records_path, f"GET {self.path}"))

    def pages(self, params: dict[str, Any]) -> Iterator[Page]:
        return self.paginator.pages(self.http, self.path, params, self.records_path, tolerate=self.tolerate)

    # -- the contract ---------------------------------------------------------------------------
    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        self.prepare()
        steps = self.cursor.read(self, state)
        for items, new_state, page in prefetch(steps) if self.read_ahead else steps:
            if page.response.status in (403, 404) and self.optional:
                yield Batch([], notices=[self.unavailable(page.response.status)])
                return
            yield Batch(self.map_page(items, page), new_state)
        notices = self.notices()
        if notices:
            yield Batch([], notices=notices)


class RestConnector(Connector):
    """A connector made of RestStreams over one HTTP API."""

    #: Cheap authenticated GET that proves the credentials (`kpisync pull` runs it first).
    check_path: ClassVar[str]
    stream_classes: ClassVar[list[type[Stream]]] = []
    #: Where the API lives when the config has no `base_url`.
    default_base_url: ClassVar[str | None] = None
    #: Extra HttpClient options (max_attempts, default_retry_after, ...).
    client_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        if not isinstance(config, self.config_model):
            raise ConfigError(f"{self.name}: expected {self.config_model.__name__} settings")
        super().__init__(config, runtime)
        self.base_url = self.api_base_url().rstrip("/")
        options = {**self.client_options, "headers": {**self.client_options.get("headers", {}), **self.headers()}}
        self.auth = self.authenticator()
        self.http = api_client(self, self.base_url, self.auth, rate_policy=self.rate_policy(), **options)

    def api_base_url(self) -> str:
        url = self.config.base_url or self.default_base_url
        if not url:
            raise ConfigError(f"{self.name}: set 'base_url'")
        return url

    def authenticator(self) -> Auth:
        return NoAuth()

    def rate_policy(self) -> RatePolicy | None:
        return None

    def headers(self) -> dict[str, str]:
        """Headers of every request, token requests included (a User-Agent the vendor requires)."""
        return {}

    def check(self) -> None:
        self.http.get(self.check_path)

    def streams(self) -> list[Stream]:
        return [cls(self) for cls in self.stream_classes]  # type: ignore[call-arg]

    def close(self) -> None:
        self.http.close()
        self.auth.close()
