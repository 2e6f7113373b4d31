"""The sync engine: read a connector's streams and commit each batch with its state.

Exactness comes from one rule: a batch's records and the stream state after them are written in
one transaction (`Store.write_batch`). Upserts are keyed by (source, external_id), so replaying
a batch after a kill changes nothing; the state never runs ahead of its data.

SIGTERM/SIGINT set `runtime.stop`: the current batch is committed and the run ends as
"interrupted", to be continued by the next run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .connector import Connector, Stream
from .httpclient import Runtime
from .errors import AuthError, Interrupted, KpisyncError, StoreError
from .facts import refresh_facts
from .lock import SourceLock
from .store import Store

log = logging.getLogger("kpisync.sync")


@dataclass
class StreamResult:
    name: str
    status: str = "pending"  # success, failed, interrupted, skipped
    records: int = 0
    rows_written: int = 0
    requests: int = 0
    batches: int = 0
    seconds: float = 0.0
    waited: float = 0.0
    error: str | None = None
    notices: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    run_id: int
    source: str
    connector: str
    status: str = "running"  # success, failed, interrupted
    streams: list[StreamResult] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.streams)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.streams)

    @property
    def rows_written(self) -> int:
        return sum(s.rows_written for s in self.streams)

    @property
    def notices(self) -> list[str]:
        return [n for s in self.streams for n in s.notices]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(requests=self.requests, records=self.records, rows_written=self.rows_written)
        return data


class SyncObserver:
    """Progress hooks (the CLI draws bars with them); every method is optional."""

    def stream_started(self, source: str, stream: str) -> None: ...

    def batch_written(self, source: str, result: StreamResult) -> None: ...

    def stream_finished(self, source: str, result: StreamResult) -> None: ...


def sync_source(
    store: Store,
    source: str,
    connector: Connector,
    *,
    full_refresh: bool = False,
    only_streams: list[str] | None = None,
    observer: SyncObserver | None = None,
    lock_wait: float | None = None,
    facts: bool = True,
) -> RunResult:
    """Pull every stream of `connector` into `store` under the name `source`.

    `lock_wait`: seconds to wait for another sync of the same source (default: fail at once).
    `facts=False` leaves the KPI facts refresh to the caller: `kpisync sync` runs it on its main
    thread once all its parallel sources are done, so no source's batches wait behind it.
    """
    observer = observer or SyncObserver()
    runtime = connector.runtime
    lock = SourceLock(store.path, source)
    lock.acquire(wait=lock_wait, stop=runtime.stop)
    try:
        streams = connector.streams()
        if only_streams:
            unknown = set(only_streams) - {s.name for s in streams}
            if unknown:
                raise KpisyncError(
                    f"{source}: unknown stream(s) {', '.join(sorted(unknown))} "
                    f"(streams: {', '.join(s.name for s in streams)})"
                )
            streams = [s for s in streams if s.name in only_streams]
        if full_refresh:
            for stream in streams:
                store.clear_state(source, stream.name)
        run = RunResult(run_id=store.start_run(source, connector.name, full_refresh), source=source, connector=connector.name)
        started = time.monotonic()
        try:
            for stream in streams:
                result = StreamResult(name=stream.name)
                run.streams.append(result)
                try:
                    _sync_stream(store, source, stream, runtime, observer, result)
                except AuthError as exc:  # every stream would fail the same way
                    run.status, run.error = "failed", str(exc)
                    break
                if result.status == "interrupted":
                    run.status, run.error = "interrupted", result.error
                    break
            if facts and run.status != "interrupted":  # KPI facts of the tickets this run changed (core/facts.py)
                refresh_facts(store, source)
            if run.status == "running":
                failed = [s for s in run.streams if s.status == "failed"]
                run.status = "failed" if failed else "success"
                run.error = failed[0].error if failed else None
        finally:
            run.seconds = round(time.monotonic() - started, 3)
            if run.status == "running":
                run.status = "failed"
            _finish(store, run)
        return run
    finally:
        lock.release()
        connector.close()


def _sync_stream(
    store: Store, source: str, stream: Stream, runtime: Runtime, observer: SyncObserver, result: StreamResult
) -> None:
    """Run one stream to its end, filling `result`; AuthError and StoreError propagate."""
    observer.stream_started(source, stream.name)
    requests_before, waited_before = runtime.requests, runtime.waited
    started = time.monotonic()
    try:
        state = store.get_state(source, stream.name)
        for batch in stream.read(state):
            result.rows_written += store.write_batch(source, stream.name, batch.records, batch.state)
            result.records += len(batch.records)
            result.batches += 1
            result.notices.extend(n for n in batch.notices if n not in result.notices)
            result.requests = runtime.requests - requests_before
            observer.batch_written(source, result)
            if runtime.stop.is_set():
                raise Interrupted("interrupted; rerun to continue")
        result.status = "success"
    except Interrupted:
        result.status = "interrupted"
        result.error = "interrupted; rerun to continue"
    except (AuthError, StoreError) as exc:
        result.status = "failed"
        result.error = str(exc)
        raise
    except KpisyncError as exc:
        result.status = "failed"
        result.error = str(exc)
        log.warning("%s/%s failed: %s", source, stream.name, exc)
    finally:
        result.requests = runtime.requests - requests_before
        result.waited = round(runtime.waited - waited_before, 3)
        result.seconds = round(time.monotonic() - started, 3)
        observer.stream_finished(source, result)


def _finish(store: Store, run: RunResult) -> None:
    try:
        store.finish_run(
            run.run_id,
            status=run.status,
            requests=run.requests,
            records=run.records,
            rows_written=run.rows_written,
            streams=[asdict(s) for s in run.streams],
            notices=run.notices,
            error=run.error,
        )
    except StoreError:
        log.error("could not record the end of run %s", run.run_id)
