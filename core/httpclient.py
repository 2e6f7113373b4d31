"""The HTTP layer every connector uses: one pooled session, retries, pacing, redaction.

Why one shared layer: each vendor has its own rate-limit headers and failure modes, but the
handling is the same everywhere — retry 429/5xx/resets/truncated bodies with `Retry-After`
honoured, slow down before the vendor says stop, count requests, and never let a secret reach
a log line or an error message. Connectors describe their limits (`RatePolicy`) and the client
does the rest.

Time goes through `Runtime`, so tests and the demo can run the same code on a scaled clock
(`KPISYNC_TIME_SCALE=60`: a 60 s Retry-After sleeps one real second) against simulators.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from .errors import ApiError, AuthError, Interrupted, MalformedPayload

log = logging.getLogger("kpisync.http")

USER_AGENT = "kpisync/0.1 (+https://github.com/kpisync/kpisync)"
RETRY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})


class Runtime:
    """Clock, sleep, stop flag and counters shared by a sync's HTTP clients.

    `time_scale` > 1 makes simulated time run faster than real time: sleeps are divided by it.
    """

    def __init__(
        self,
        time_scale: float | None = None,
        on_wait: Callable[[float, str], None] | None = None,
    ) -> None:
        if time_scale is None:
            time_scale = float(os.environ.get("KPISYNC_TIME_SCALE", "1") or 1)
        self.time_scale = max(time_scale, 1e-9)
        self.on_wait = on_wait
        self.stop = threading.Event()
        self.requests = 0
        self.waited = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Monotonic seconds on the (scaled) clock."""
        return time.monotonic() * self.time_scale

    def sleep(self, seconds: float, reason: str) -> None:
        """Sleep `seconds` of clock time, waking early (and raising) when a stop is requested."""
        if seconds <= 0:
            return
        self.waited += seconds
        if self.on_wait is not None:
            self.on_wait(seconds, reason)
        if self.stop.wait(seconds / self.time_scale):
            raise Interrupted("interrupted; rerun to continue")

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1


@dataclass
class HttpResponse:
    """A response whose JSON body was read and parsed."""

    status: int
    headers: Mapping[str, str]
    data: Any
    url: str


class RatePolicy:
    """Pacing rules for one vendor; the default does nothing."""

    def wait_before(self, url: str, runtime: Runtime) -> tuple[float, str]:
        """Seconds to wait before requesting `url`, and why."""
        return 0.0, ""

    def observe(self, url: str, response: requests.Response, runtime: Runtime) -> None:
        """Learn from a response's rate-limit headers."""


class MinInterval(RatePolicy):
    """At most `per_minute` requests a minute to URLs matching `applies` (e.g. Zendesk exports)."""

    def __init__(self, per_minute: float, applies: Callable[[str], bool] = lambda url: True) -> None:
        self.interval = 60.0 / per_minute
        self.applies = applies
        self._next = -math.inf

    def wait_before(self, url: str, runtime: Runtime) -> tuple[float, str]:
        if not self.applies(url):
            return 0.0, ""
        now = runtime.now()
        wait = max(0.0, self._next - now)
        self._next = max(now, self._next) + self.interval
        return wait, f"pacing {60 / self.interval:g} requests/min"


class HeaderBudget(RatePolicy):
    """Stop before the vendor's budget runs out, using its remaining/reset headers.

    `reset_is_epoch` for vendors that send the reset as a unix time (X, Reddit send seconds).
    """

    def __init__(
        self,
        remaining: Iterable[str],
        reset: Iterable[str] = (),
        floor: int = 1,
        default_reset: float = 60.0,
        reset_is_epoch: bool = False,
    ) -> None:
        self.remaining_headers = tuple(h.lower() for h in remaining)
        self.reset_headers = tuple(h.lower() for h in reset)
        self.floor = floor
        self.default_reset = default_reset
        self.reset_is_epoch = reset_is_epoch
        self._resume_at = -math.inf

    def wait_before(self, url: str, runtime: Runtime) -> tuple[float, str]:
        return max(0.0, self._resume_at - runtime.now()), "rate limit budget used up"

    def observe(self, url: str, response: requests.Response, runtime: Runtime) -> None:
        remaining = _first_number(response.headers, self.remaining_headers)
        if remaining is None or remaining > self.floor:
            return
        reset = _first_number(response.headers, self.reset_headers)
        if reset is None:
            reset = self.default_reset
        elif self.reset_is_epoch:
            reset = max(0.0, reset - time.time())
        # Reset headers are rounded to whole seconds and the two clocks differ a little: resume a
        # bit (2 %, at least a second) after the announced reset so the next request is not refused.
        self._resume_at = runtime.now() + reset + max(1.0, 0.02 * reset)


class Policies(RatePolicy):
    """Several policies at once: wait for the longest."""

    def __init__(self, *policies: RatePolicy) -> None:
        self.policies = policies

    def wait_before(self, url: str, runtime: Runtime) -> tuple[float, str]:
        waits = [p.wait_before(url, runtime) for p in self.policies]
        return max(waits, default=(0.0, ""), key=lambda w: w[0])

    def observe(self, url: str, response: requests.Response, runtime: Runtime) -> None:
        for policy in self.policies:
            policy.observe(url, response, runtime)


def _first_number(headers: Mapping[str, str], names: Iterable[str]) -> float | None:
    for name in names:
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value.split(",")[0].strip())
        except ValueError:
            continue
    return None


class _Transient(Exception):
    """A failure worth retrying; `retry_after` is the vendor's hint in clock seconds."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class HttpClient:
    """A pooled `requests.Session` with the retry, pacing and redaction rules above."""

    def __init__(
        self,
        base_url: str,
        runtime: Runtime,
        *,
        name: str,
        headers: Mapping[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        secrets: Iterable[str] = (),
        rate_policy: RatePolicy | None = None,
        auth_hint: str = "check the credentials",
        timeout: tuple[float, float] = (10.0, 120.0),
        max_attempts: int = 8,
        max_backoff: float = 120.0,
        default_retry_after: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.runtime = runtime
        self.name = name
        self.rate_policy = rate_policy or RatePolicy()
        self.auth_hint = auth_hint
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.default_retry_after = default_retry_after
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        if headers:
            self.session.headers.update(headers)
        secret_list = [s for s in secrets if s]
        if basic_auth is not None:
            self.session.auth = basic_auth
            token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
            secret_list.append(token)
        self._secrets = sorted(set(secret_list), key=len, reverse=True)
        self._rng = random.Random()

    # -- public ------------------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return urljoin(self.base_url, path_or_url.lstrip("/"))

    def get(
        self,
        path_or_url: str,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        *,
        tolerate: Iterable[int] = (),
        retry_statuses: Iterable[int] = RETRY_STATUSES,
    ) -> HttpResponse:
        """GET JSON. Statuses in `tolerate` are returned instead of raised (e.g. 422, 403)."""
        return self.request("GET", path_or_url, params=params, tolerate=tolerate, retry_statuses=retry_statuses)

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json_body: Any = None,
        form: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        tolerate: Iterable[int] = (),
        retry_statuses: Iterable[int] = RETRY_STATUSES,
    ) -> HttpResponse:
        """Any method; `form` sends an x-www-form-urlencoded body (OAuth token endpoints)."""
        url = self.url(path_or_url)
        tolerated = frozenset(tolerate)
        retryable = frozenset(retry_statuses) - tolerated
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            retry=retry_if_exception_type(_Transient),
            wait=self._wait_for,
            sleep=lambda seconds: self.runtime.sleep(seconds, "retrying after an error"),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, url, params, (json_body, form), headers, tolerated, retryable)
        except _Transient as exc:
            raise ApiError(
                self.redact(f"{self.name}: {method} {_path(url)} failed after {self.max_attempts} attempts: {exc}"),
                status=exc.status,
            ) from None

    def add_secret(self, value: str) -> None:
        """Redact `value` too (a token obtained at run time, e.g. an OAuth access token)."""
        if value and value not in self._secrets:
            self._secrets = sorted({*self._secrets, value}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def close(self) -> None:
        self.session.close()

    # -- internals ---------------------------------------------------------------------------
    def _attempt(
        self,
        method: str,
        url: str,
        params: Any,
        body: tuple[Any, Mapping[str, Any] | None],
        headers: Mapping[str, str] | None,
        tolerated: frozenset[int],
        retryable: frozenset[int],
    ) -> HttpResponse:
        if self.runtime.stop.is_set():
            raise Interrupted("interrupted; rerun to continue")
        wait, reason = self.rate_policy.wait_before(url, self.runtime)
        self.runtime.sleep(wait, reason)
        self.runtime.count_request()
        try:
            response = self.session.request(
                method, url, params=params, json=body[0], data=body[1], headers=headers, timeout=self.timeout
            )
        except requests.exceptions.ConnectionError as exc:
            if _is_refused(exc):
                raise ApiError(self.redact(f"{self.name}: cannot reach {_host(url)} (connection refused)")) from None
            raise _Transient(f"connection error: {type(exc).__name__}") from None
        except requests.exceptions.Timeout:
            raise _Transient("timed out") from None
        except requests.exceptions.RequestException as exc:
            raise _Transient(f"transport error: {type(exc).__name__}") from None
        self.rate_policy.observe(url, response, self.runtime)
        status = response.status_code
        if status in (401, 403) and status not in tolerated:
            raise AuthError(
                self.redact(f"{self.name}: authentication failed (HTTP {status}) — {self.auth_hint}")
            )
        if status in retryable:
            raise _Transient(f"HTTP {status}", retry_after=_retry_after(response), status=status)
        if status >= 400 and status not in tolerated:
            raise ApiError(
                self.redact(f"{self.name}: {method} {_path(url)} returned HTTP {status}: {_snippet(response)}"),
                status=status,
            )
        try:
            data = orjson.loads(response.content) if response.content else None
        except (ValueError, requests.exceptions.RequestException):
            if status >= 400:  # a tolerated error status: its body (often HTML) does not matter
                data = None
            else:  # a truncated or garbled body: the next attempt usually gets it whole
                raise _Transient("truncated or invalid JSON body", status=status) from None
        return HttpResponse(status=status, headers=response.headers, data=data, url=response.url)

    def _wait_for(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.status == 429:
            return exc.retry_after if exc.retry_after is not None else self.default_retry_after
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return exc.retry_after
        backoff = min(self.max_backoff, 0.5 * 2 ** (state.attempt_number - 1))
        return backoff * (0.5 + self._rng.random() / 2)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("%s: attempt %d failed (%s); retrying", self.name, state.attempt_number, exc)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _is_refused(exc: requests.exceptions.ConnectionError) -> bool:
    text = repr(exc)
    return "Connection refused" in text or "NameResolutionError" in text or "Failed to resolve" in text


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _path(url: str) -> str:
    return urlsplit(url).path


def _snippet(response: requests.Response) -> str:
    try:
        body = response.json()
        text = json.dumps(body)[:200]
    except ValueError:
        text = response.text[:200]
    return " ".join(text.split())


def expect(data: Any, key: str, kind: type, what: str) -> Any:
    """`data[key]` if it is a `kind`, else a MalformedPayload naming what was expected."""
    if not isinstance(data, dict) or not isinstance(data.get(key), kind):
        raise MalformedPayload(f"malformed response from {what}: expected '{key}' ({kind.__name__})")
    return data[key]
