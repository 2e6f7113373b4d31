"""`kpisync sync`: pull every configured source; one failing source does not stop the others.

Sources are the `[sources.NAME]` tables of kpisync.toml, synced one after another into one
store, each under its own lock. A source that fails (bad settings, credentials, an API outage
that outlasts the retries, a bug) is recorded as a failed run and the next source runs; a source
another process is syncing is skipped at once, or waited for with `--wait`. SIGTERM/SIGINT
finish the current batch, commit it with its cursor and stop.

Exit codes: 0 every source synced; 7 partial (some synced, others failed or were busy);
1 no source synced; 6 every source was busy with another sync; 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from dataclasses import dataclass
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from kpisync.core import logs
from kpisync.core.config import configured_sources, connector_name_of, load_config_file, source_settings
from kpisync.core.errors import ConfigError, Interrupted, KpisyncError, LockedError, StoreError
from kpisync.core.httpclient import Runtime
from kpisync.core.registry import load_connector
from kpisync.core.schedule import parse_duration
from kpisync.core.store import Store
from kpisync.core.sync import RunResult, sync_source

from .app import ConfigOption, DbOption, JsonOption, app
from .common import open_store, scrub, stop_on_signals

EXIT_PARTIAL = 7
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
        with open_store(db) as store:
            outcomes = [_sync_one(store, config, source, runtime, options) for source in sources]
        _log_finished(outcomes, (runtime.now() - started) / runtime.time_scale)
        return outcomes
    finally:
        logs.set_run_id(None)


def _sync_one(store: Store, config: dict[str, Any], source: str, runtime: Runtime, options: SyncOptions) -> SourceOutcome:
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
        settings = source_settings(source, connector_cls, config)
        for secret in settings.secret_values():
            logs.add_secret(secret)
        connector = connector_cls(settings, runtime)
        if options.check:
            connector.check()
        run = sync_source(
            store, source, connector, full_refresh=options.full_refresh, observer=logs.LogObserver(), lock_wait=options.lock_wait
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
    log_format: str = LogFormatOption,
    as_json: bool = JsonOption,
) -> None:
    """Pull every configured source; exit 0 when all synced, 7 when only some did."""
    logs.setup_logging(log_format)
    options = SyncOptions(sources=source, full_refresh=full_refresh, check=check, lock_wait=lock_wait_seconds(wait, wait_timeout))
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
