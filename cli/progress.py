"""Sync progress for people (rich, on a terminal) and the end-of-run summary."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from kpisync.core.sync import RunResult, StreamResult, SyncObserver


#: Redraws of the live table per second at most.
REDRAWS_PER_SECOND = 8


class TerminalProgress(SyncObserver):
    """A live table of streams (records, requests, waits); plain lines when not a terminal.

    The table is redrawn on the sync's own events, not by a refresh thread: the KPI facts refresh
    at the end of a sync forks a worker only when no other thread runs (core/facts_parallel.py).
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.rows: dict[str, StreamResult] = {}
        self.current: str | None = None
        self.waiting: str = ""
        self.live: Live | None = None
        self._last_line = 0.0
        self._last_draw = 0.0

    def __enter__(self) -> TerminalProgress:
        if self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, auto_refresh=False, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def stream_started(self, source: str, stream: str) -> None:
        self.current = stream
        self.rows[stream] = StreamResult(name=stream, status="running")
        self._refresh(force=True)

    def batch_written(self, source: str, result: StreamResult) -> None:
        self.rows[result.name] = result
        self.waiting = ""
        self._refresh()

    def stream_finished(self, source: str, result: StreamResult) -> None:
        self.rows[result.name] = result
        if self.live is None:
            line = f"{source}/{result.name}: {result.status}, {result.records} records, {result.requests} requests"
            if result.error:
                line += f" — {result.error}"
            self.console.print(line, highlight=False)
        self._refresh(force=True)

    def on_wait(self, seconds: float, reason: str) -> None:
        """Rate-limit and retry waits are shown as such, not as a hang."""
        self.waiting = f"waiting {seconds:.1f}s ({reason})"
        if self.live is None and seconds >= 5 and time.monotonic() - self._last_line > 5:
            self._last_line = time.monotonic()
            self.console.print(f"  {self.current}: {self.waiting}", highlight=False)
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.live is not None and (force or now - self._last_draw >= 1 / REDRAWS_PER_SECOND):
            self._last_draw = now
            self.live.update(self._table(), refresh=True)

    def _table(self) -> Table:
        table = Table(box=None, show_header=True, header_style="bold")
        for column in ("stream", "status", "records", "written", "requests", ""):
            table.add_column(column, justify="right" if column in ("records", "written", "requests") else "left")
        for name, row in self.rows.items():
            note = self.waiting if name == self.current and row.status == "running" else ""
            table.add_row(name, row.status, str(row.records), str(row.rows_written), str(row.requests), note)
        return table


def print_summary(console: Console, run: RunResult) -> None:
    """One screen: per stream status, records, rows written, requests, time; then notices."""
    table = Table(title=f"{run.source} ({run.connector}) — run {run.run_id}: {run.status}", title_justify="left")
    for column in ("stream", "status", "records", "written", "requests", "seconds", "waited"):
        table.add_column(column, justify="left" if column in ("stream", "status") else "right")
    for s in run.streams:
        table.add_row(s.name, s.status, f"{s.records:,}", f"{s.rows_written:,}", str(s.requests), f"{s.seconds:.1f}", f"{s.waited:.1f}")
    table.add_row("total", run.status, f"{run.records:,}", f"{run.rows_written:,}", str(run.requests), f"{run.seconds:.1f}", "", style="bold")
    console.print(table)
    for notice in run.notices:
        console.print(f"[yellow]notice:[/] {notice}", highlight=False)
    for s in run.streams:
        if s.error:
            print(f"error: {run.source}/{s.name}: {s.error}", file=sys.stderr)
