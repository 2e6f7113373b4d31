"""`kpisync sync`: pull every configured source; one failing source does not stop the others.

Sources are the `[sources.NAME]` tables of kpisync.toml, synced into one store, each under its
own lock. Up to `--parallel N` sources (default: min(4, number of sources)) sync at once, each on
its own thread with its own store connection, so sources that wait on their APIs wait together
(CPU-bound work — parsing, mapping — still shares one interpreter). Their batches stay short
transactions (a writer waits for the others' commits through SQLite's busy timeout), and the KPI
facts refresh, which can hold the write lock for seconds on a big store, runs once they have all
finished, on the main thread, source by source. `--parallel 1` syncs one source after another,
each refreshing its facts at its end.

A source that fails (bad settings, credentials, an API outage that outlasts the retries, a bug)
is recorded as a failed run and the others go on; a source another process is syncing is skipped
at once, or waited for with `--wait`. SIGTERM/SIGINT: every running source finishes its current
batch, commits it with its cursor and stops; sources not started yet are skipped, and the facts
refresh is left to the next sync or KPI query. The outcome table and `--json` list the sources in
the config's order whatever order they finished in.

Exit codes: 0 every source synced; 7 partial (some synced, others failed or were busy);
1 no source synced; 6 every source was busy with another sync; 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from kpisync.core import logs
from kpisync.core.config import configured_sources, connector_name_of, load_config_file, source_settings
from kpisync.core.errors import ConfigError, Interrupted, KpisyncError, LockedError, StoreError
from kpisync.core.facts import refresh_facts
from kpisync.core.httpclient import Runtime
from kpisync.core.registry import load_connector
from kpisync.core.schedule import parse_duration
from kpisync.core.store import Store
from kpisync.core.sync import RunResult, sync_source

from .app import ConfigOption, DbOption, JsonOption, app
from .common import open_store, scrub, stop_on_signals

EXIT_PARTIAL = 7
DEFAULT_PARALLEL = 4  # sources at once: network-bound syncs overlap; more would mostly queue on the GIL and the write lock
#: One source's settings at a time: a keyring may prompt to be unlocked, and its backends are not
#: all safe to call from several threads at once.
_SETTINGS_LOCK = threading.Lock()
ParallelOption = typer.Option(
    None, "--parallel", show_default=False,
    help=f"Sources synced at once, each on its own thread (default: min({DEFAULT_PARALLEL}, number of sources); 1: one after another).",
)
LogFormatOption = typer.Option(
    "text", "--log-format", envvar="KPISYNC_LOG_FORMAT", help="Log lines on stderr: text (for people) or json (for log shippers)."
)


@dataclass
class SourceOutcome:
    """How one source fared in a sync of all sources."""

    source: str
    status: str  # success, failed, interrupted, locked, skipped
    run: RunResult | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "status": self.status, "error": self.error, "run": self.run.to_dict() if self.run else None}


@dataclass
class SyncOptions:
    sources: list[str] | None = None
    full_refresh: bool = False
    check: bool = True
    lock_wait: float | None = None
    parallel: int | None = None  # sources synced at once; None: min(DEFAULT_PARALLEL, number of sources)

    def workers(self, sources: int) -> int:
        wanted = DEFAULT_PARALLEL if self.parallel is None else self.parallel
        return max(1, min(wanted, sources))


def exit_code(outcomes: list[SourceOutcome]) -> int:
    statuses = [o.status for o in outcomes]
    if "interrupted" in statuses or "skipped" in statuses:  # skipped: not started after a stop
        return Interrupted.exit_code
    if all(s == "success" for s in statuses):
        return 0
    if "success" in statuses:
        return EXIT_PARTIAL
    if all(s == "locked" for s in statuses):
        return LockedError.exit_code
    return 1


def selected_sources(config: dict[str, Any], only: list[str] | None) -> list[str]:
    if only:
        return list(dict.fromkeys(only))
    names = list(configured_sources(config))
    if not names:
        raise ConfigError(
            "no sources configured: add [sources.NAME] tables to kpisync.toml (`kpisync init` writes one) "
            "or name sources with --source"
        )
    return names


def run_sync(db: str | None, config_path: str | None, options: SyncOptions, runtime: Runtime) -> list[SourceOutcome]:
    """One sync of all selected sources, logged under a new run id."""
    config = load_config_file(config_path)
    sources = selected_sources(config, options.sources)
    run_id = logs.new_run_id()
    logs.set_run_id(run_id)
    started = runtime.now()
    try:
        logs.event(f"sync started: {', '.join(sources)}", sources=sources)
        with open_store(db) as store:  # migrates the store before any thread opens its own connection
            workers = options.workers(len(sources))
            if workers == 1:
                outcomes = [_sync_one(store, config, source, runtime, options) for source in sources]
            else:
                outcomes = _sync_parallel(store.path, config, sources, runtime, options, workers)
                _refresh_facts(store, outcomes, runtime)
        _log_finished(outcomes, (runtime.now() - started) / runtime.time_scale)
        return outcomes
    finally:
        logs.set_run_id(None)


def _sync_parallel(
    path: Path, config: dict[str, Any], sources: list[str], runtime: Runtime, options: SyncOptions, workers: int
) -> list[SourceOutcome]:
    """Sync `sources` on `workers` threads; outcomes in the order of `sources`.

    Every thread has ended when this returns, so the facts refresh after it may fork again
    (core/facts.py forks only in a single-threaded process).
    """
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kpisync-sync") as pool:
        futures = [pool.submit(_sync_in_thread, path, config, source, runtime, options) for source in sources]
        return [_outcome_of(future, source) for future, source in zip(futures, sources)]


def _sync_in_thread(path: Path, config: dict[str, Any], source: str, runtime: Runtime, options: SyncOptions) -> SourceOutcome:
    """One source on a worker thread: its own store connection (a sqlite3 connection stays in its
    thread) and its own runtime (request and wait counters, the source named in wait log lines),
    sharing the stop flag. The facts refresh is left to the main thread."""
    try:
        store = Store(path)
    except KpisyncError as exc:
        error = scrub(str(exc))
        logs.event(f"failed: {error}", logging.ERROR, source=source, status="failed", error=error)
        return SourceOutcome(source, "failed", error=error)
    with store:
        return _sync_one(store, config, source, _source_runtime(runtime), options, facts=False)


def _source_runtime(parent: Runtime) -> Runtime:
    """A runtime for one source's thread: same clock scale and stop flag, counters of its own."""
    on_wait = logs.WaitLogger() if isinstance(parent.on_wait, logs.WaitLogger) else parent.on_wait
    runtime = Runtime(time_scale=parent.time_scale, on_wait=on_wait)
    runtime.stop = parent.stop  # SIGTERM/SIGINT reach every thread
    return runtime


def _outcome_of(future: Future[SourceOutcome], source: str) -> SourceOutcome:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 — _sync_one turns failures into outcomes; this is the last guard
        error = scrub(f"internal error: {type(exc).__name__}: {exc}")
        logs.event(f"failed: {error}", logging.ERROR, source=source, status="failed", error=error)
        return SourceOutcome(source, "failed", error=error)


def _refresh_facts(store: Store, outcomes: list[SourceOutcome], runtime: Runtime) -> None:
    """The KPI facts of the tickets each source changed, after the parallel syncs, on this thread.

    Per source, as `sync_source` does at the end of a sequential sync: the same facts, also of
    ticketless ratings, and only for sources that ran to their end (not interrupted). After a
    stop (before or during this step) the rest is not refreshed: the changed tickets stay listed
    for the next sync or KPI query. A refresh that fails fails its source, as it would have
    inside `sync_source`.
    """
    for i, outcome in enumerate(outcomes):
        run = outcome.run
        if runtime.stop.is_set():
            return
        if run is None or run.status == "interrupted":
            continue
        try:
            refresh_facts(store, outcome.source)
        except Exception as exc:  # noqa: BLE001 — like any failure of a source: recorded, the others go on
            text = str(exc) if isinstance(exc, KpisyncError) else f"internal error: {type(exc).__name__}: {exc}"
            outcomes[i] = _facts_failed(store, run, scrub(f"KPI facts refresh failed: {text}"))


def _facts_failed(store: Store, run: RunResult, error: str) -> SourceOutcome:
    """The source's run becomes failed with `error`, in the store and in the outcome."""
    logs.event(f"failed: {error}", logging.ERROR, source=run.source, status="failed", error=error)
    run.status, run.error = "failed", error
    try:
        with store.transaction() as conn:
            conn.execute("UPDATE sync_runs SET status = 'failed', error = ? WHERE id = ?", (error, run.run_id))
    except StoreError:
        pass
    return SourceOutcome(run.source, "failed", run=run, error=error)


def _sync_one(
    store: Store, config: dict[str, Any], source: str, runtime: Runtime, options: SyncOptions, facts: bool = True
) -> SourceOutcome:
    """Sync one source; every failure ends as an outcome, never as an exception."""
    if runtime.stop.is_set():
        return SourceOutcome(source, "skipped", error="not started: the sync was interrupted")
    waits = runtime.on_wait
    if isinstance(waits, logs.WaitLogger):
        waits.source = source
    connector = None
    connector_name = source
    before = _last_run_id(store, source)
    try:
        connector_name = connector_name_of(source, config)
        connector_cls = load_connector(connector_name)
        with _SETTINGS_LOCK:
            settings = source_settings(source, connector_cls, config)
        for secret in settings.secret_values():
            logs.add_secret(secret)
        connector = connector_cls(settings, runtime)
        if options.check:
            connector.check()
        run = sync_source(
            store,
            source,
            connector,
            full_refresh=options.full_refresh,
            observer=logs.LogObserver(),
            lock_wait=options.lock_wait,
            facts=facts,
        )
    except LockedError as exc:
        message = str(exc) + ("" if options.lock_wait else " (or use --wait)")
        logs.event(f"skipped: {message}", logging.WARNING, source=source, status="locked")
        return SourceOutcome(source, "locked", error=message)
    except Interrupted as exc:
        logs.event(str(exc), logging.WARNING, source=source, status="interrupted")
        return SourceOutcome(source, "interrupted", error=str(exc))
    except KpisyncError as exc:
        return _failed(store, source, connector_name, scrub(str(exc)), before)
    except Exception as exc:  # noqa: BLE001 — a bug in one connector must not stop the others
        return _failed(store, source, connector_name, scrub(f"internal error: {type(exc).__name__}: {exc}"), before)
    finally:
        if connector is not None:
            connector.close()
    error = run.error if run.status != "success" else None
    level = logging.INFO if run.status == "success" else logging.WARNING
    logs.event(
        f"{run.status}: {run.records} records ({run.rows_written} written), {run.requests} requests",
        level,
        **logs.run_fields(run),
    )
    return SourceOutcome(source, run.status, run=run, error=error)


def _failed(store: Store, source: str, connector_name: str, error: str, before: int | None) -> SourceOutcome:
    """A failed source always leaves a failed run with its error, for `status`.

    When the engine already recorded the attempt (an error it does not catch, e.g. a full disk)
    that run gets the error; otherwise (bad settings, a failed check) a run is added.
    """
    logs.event(f"failed: {error}", logging.ERROR, source=source, status="failed", error=error)
    try:
        with store.transaction() as conn:
            updated = conn.execute(
                "UPDATE sync_runs SET error = ? WHERE source = ? AND id > ? AND status = 'failed' AND error IS NULL",
                (error, source, before or 0),
            ).rowcount
        if not updated:
            run_id = store.start_run(source, connector_name, False)
            store.finish_run(run_id, status="failed", streams=[], notices=[], error=error)
    except StoreError:
        pass
    return SourceOutcome(source, "failed", error=error)


def _last_run_id(store: Store, source: str) -> int | None:
    try:
        return store.query("SELECT max(id) AS id FROM sync_runs WHERE source = ?", (source,))[0]["id"]
    except Exception:  # noqa: BLE001 — only used to tell the engine's run from ours
        return None


def _log_finished(outcomes: list[SourceOutcome], seconds: float) -> None:
    ok = sum(o.status == "success" for o in outcomes)
    problems = [f"{o.source} {o.status}" for o in outcomes if o.status != "success"]
    text = f"sync finished: {ok} of {len(outcomes)} sources synced"
    if problems:
        text += " (" + ", ".join(problems) + ")"
    code = exit_code(outcomes)
    logs.event(text, logging.INFO if code == 0 else logging.WARNING, exit_code=code, seconds=round(seconds, 3))


def print_outcomes(outcomes: list[SourceOutcome]) -> None:
    """The end-of-sync table on stdout: one row per source."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("source", "status", "records", "written", "requests", "seconds", "error"):
        table.add_column(column, justify="right" if column in ("records", "written", "requests", "seconds") else "left")
    for o in outcomes:
        run = o.run
        table.add_row(
            o.source,
            o.status,
            f"{run.records:,}" if run else "",
            f"{run.rows_written:,}" if run else "",
            str(run.requests) if run else "",
            f"{run.seconds:.1f}" if run else "",
            o.error or "",
        )
    Console(width=160).print(table)


def check_parallel(parallel: int | None) -> None:
    """Typer's own min=1 check would end as an internal error: a one-line ConfigError instead."""
    if parallel is not None and parallel < 1:
        raise ConfigError(f"--parallel {parallel}: give 1 (one source after another) or more")


def lock_wait_seconds(wait: bool, wait_timeout: str | None) -> float | None:
    if wait_timeout:
        return parse_duration(wait_timeout)
    return math.inf if wait else None


@app.command()
def sync(
    db: Optional[str] = DbOption,
    config: Optional[str] = ConfigOption,
    source: Optional[list[str]] = typer.Option(None, "--source", "-s", help="Only these sources (repeatable); default: every source of the config file."),
    full_refresh: bool = typer.Option(False, "--full-refresh", help="Forget cursors and re-read everything (rows are upserted, never duplicated)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Verify each source's credentials with one request first."),
    wait: bool = typer.Option(False, "--wait", help="Wait for another running sync of a source instead of skipping it."),
    wait_timeout: Optional[str] = typer.Option(None, "--wait-timeout", help="With --wait: give up after this long (e.g. 10m).", show_default=False),
    parallel: Optional[int] = ParallelOption,
    log_format: str = LogFormatOption,
    as_json: bool = JsonOption,
) -> None:
    """Pull every configured source; exit 0 when all synced, 7 when only some did."""
    logs.setup_logging(log_format)
    check_parallel(parallel)
    options = SyncOptions(
        sources=source, full_refresh=full_refresh, check=check, lock_wait=lock_wait_seconds(wait, wait_timeout), parallel=parallel
    )
    runtime = Runtime(on_wait=logs.WaitLogger())
    with stop_on_signals(runtime):
        outcomes = run_sync(db, config, options, runtime)
    code = exit_code(outcomes)
    if as_json:
        json.dump({"exit_code": code, "sources": [o.to_dict() for o in outcomes]}, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    elif log_format == "text":
        print_outcomes(outcomes)
    if code == Interrupted.exit_code:
        print("error: interrupted; rerun to continue", file=sys.stderr)
    raise typer.Exit(code)
