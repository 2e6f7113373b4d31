"""The live progress table of `kpisync pull`/`demo` on a terminal."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from kpisync.cli.progress import TerminalProgress
from kpisync.core.sync import StreamResult


def test_the_live_table_runs_no_thread_of_its_own_and_shows_each_stream() -> None:
    """A refresh thread would keep the facts refresh at the end of the sync from forking its
    second process (it forks only when no other thread runs): the table is drawn on events."""
    out = io.StringIO()
    progress = TerminalProgress(Console(file=out, force_terminal=True, width=100))
    threads = threading.active_count()
    with progress:
        assert threading.active_count() == threads
        progress.stream_started("zd", "tickets")
        progress.batch_written("zd", StreamResult(name="tickets", status="running", records=500, rows_written=500, requests=5))
        progress.on_wait(12.0, "429 Too Many Requests")
        progress.stream_finished("zd", StreamResult(name="tickets", status="success", records=1000, rows_written=990, requests=10))
        assert threading.active_count() == threads
    shown = out.getvalue()
    assert "tickets" in shown and "1000" in shown and "990" in shown
    assert "waiting 12.0s (429 Too Many Requests)" in shown
