"""`kpisync sync --parallel N`: several sources at once, against simulators on 127.0.0.1.

Sources: three Zendesk accounts (each its own world) and a Freshdesk account, so two connectors
with different request patterns (incremental exports; a keyset-paged list + per-ticket
conversations). What a user would notice: the same store as a one-after-another sync, one source's
failure leaves the others alone, a write-lock wait fails nothing, SIGTERM stops every source at a
committed batch, and the KPI facts are brought up to date once, at the end, on the main thread.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from kpisync.core.models import User
from kpisync.core.store import Store

from .conftest import cli, count, kpisync, rows, start_kpisync, write_config

EMAIL = "ops@acme.test"
TOKENS = {"zendesk": "tokA-9f8e7d6c5b4a", "zendesk_eu": "tokB-0a1b2c3d4e5f", "zendesk_us": "tokD-1b2c3d4e5f6a"}
FD_KEY = "fdkey-7a6b5c4d3e2f"
EXPORT = "/api/v2/incremental/tickets/cursor.json"
FACT_TABLES = ("ticket_facts", "fact_events", "reply_pairs", "status_spans", "rating_facts", "ticket_tags")


class Accounts:
    """Simulators of the four accounts; `config` writes the kpisync.toml pointing at them."""

    def __init__(self, worlds: Any, stack: ExitStack) -> None:
        from kpisync.fixtures.freshdesk_sim import UNLIMITED, FreshdeskSim
        from kpisync.fixtures.zendesk_sim import ZendeskSimulator

        unlimited = {"incremental_limit_per_min": 100_000, "account_limit_per_min": 100_000}
        self.worlds = {"zendesk": worlds(1), "zendesk_eu": worlds(2, days=12), "zendesk_us": worlds(5, days=8), "freshdesk": worlds(4, days=10)}
        self.sims: dict[str, Any] = {
            name: stack.enter_context(ZendeskSimulator(self.worlds[name], email=EMAIL, api_token=token, **unlimited))
            for name, token in TOKENS.items()
        }
        self.sims["freshdesk"] = stack.enter_context(FreshdeskSim(self.worlds["freshdesk"], api_key=FD_KEY, plan=UNLIMITED))

    def config(self, path: Path, **extra: dict[str, Any]) -> Path:
        sources: dict[str, dict[str, Any]] = {
            name: {"connector": "zendesk", "base_url": self.sims[name].url, "email": EMAIL, "api_token": f"env:TOKEN_{name.upper()}"}
            for name in TOKENS
        }
        sources["freshdesk"] = {"base_url": self.sims["freshdesk"].url, "api_key": "env:FD_KEY"}
        sources.update(extra)
        return write_config(path, sources)

    @staticmethod
    def env(env: dict[str, str]) -> dict[str, str]:
        return dict(env, FD_KEY=FD_KEY, **{f"TOKEN_{name.upper()}": token for name, token in TOKENS.items()})


@pytest.fixture()
def accounts(small_worlds: Any) -> Iterator[Accounts]:
    with ExitStack() as stack:
        yield Accounts(small_worlds, stack)


class Rendezvous:
    """Holds the first request each simulator gets until every one has got one — a sync gets
    through only if its sources really run at the same time — then holds the store's write lock
    for `hold` seconds from another connection while they all go on and commit."""

    def __init__(self, sims: list[Any], db: Path, hold: float) -> None:
        self.barrier = threading.Barrier(len(sims), action=self._lock_store)
        self.db, self.hold = db, hold
        self.answers = {id(sim): sim.handle for sim in sims}
        self.sims = sims
        self.failed = False
        for sim in sims:
            sim.handle = self._handler(sim)

    def _handler(self, sim: Any) -> Any:
        answer, first = sim.handle, threading.Event()

        def handle(request: Any) -> Any:
            if not first.is_set():
                first.set()
                try:
                    self.barrier.wait(timeout=30)
                except threading.BrokenBarrierError:
                    self.failed = True
            return answer(request)

        return handle

    def _lock_store(self) -> None:
        conn = sqlite3.connect(self.db, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")  # e.g. a `kpisync kpi` refreshing the facts of a big store
        threading.Timer(self.hold, lambda: (conn.execute("COMMIT"), conn.close())).start()

    def close(self) -> None:
        for sim in self.sims:
            sim.handle = self.answers[id(sim)]


def facts(db: Path) -> dict[str, list[Any]]:
    """Every facts row with its ticket's (source, id) instead of the internal tid, sorted."""
    conn = sqlite3.connect(db)
    try:
        tickets = {tid: (source, ticket) for tid, source, ticket in conn.execute("SELECT tid, source, ticket_id FROM ticket_facts")}
        out = {}
        for table in FACT_TABLES:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            found = []
            for row in conn.execute(f"SELECT * FROM {table}"):
                values = dict(zip(columns, row))
                values["tid"] = tickets.get(values.get("tid"))
                found.append(values)
            out[table] = sorted(found, key=repr)
        return out
    finally:
        conn.close()


def states(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return sorted(conn.execute("SELECT source, stream, state FROM sync_state").fetchall())
    finally:
        conn.close()


def assert_same_store(db: Path, reference: Path) -> None:
    for table in Store.canonical_tables():
        assert rows(db, table) == rows(reference, table), table
    assert states(db) == states(reference)
    assert facts(db) == facts(reference)
    assert count(db, "changed_tickets") == 0 == count(reference, "changed_tickets")


def test_parallel_sync_builds_the_store_of_a_sequential_sync(accounts: Accounts, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Four sources at once — the store held by another writer for 1 s while they all commit —
    give row for row the store of `--parallel 1`, and the facts are refreshed only at the end."""
    from kpisync.cli import sync_cmd
    from kpisync.core import sync as engine

    accounts.config(tmp_path / "kpisync.toml")
    env = accounts.env(env)
    refreshes: list[tuple[str, str | None, bool, list[str]]] = []

    def spy(where: str, real: Any) -> Any:
        def refresh(store: Store, source: str | None = None, settings: Any = None) -> Any:
            workers = [t.name for t in threading.enumerate() if t.name.startswith("kpisync-sync")]
            refreshes.append((where, source, threading.current_thread() is threading.main_thread(), workers))
            return real(store, source, settings)

        return refresh

    monkeypatch.setattr(engine, "refresh_facts", spy("engine", engine.refresh_facts))
    monkeypatch.setattr(sync_cmd, "refresh_facts", spy("sync", sync_cmd.refresh_facts))
    names = ["zendesk", "zendesk_eu", "zendesk_us", "freshdesk"]

    reference = tmp_path / "sequential.db"
    done = cli("sync", "--db", str(reference), "--parallel", "1", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [(where, source) for where, source, *_ in refreshes] == [("engine", name) for name in names]  # as before: per source, inside

    refreshes.clear()
    for sim in accounts.sims.values():
        sim.requests.clear()
    db = tmp_path / "parallel.db"
    Store(db).close()
    meet = Rendezvous(list(accounts.sims.values()), db, hold=1.0)
    started = time.monotonic()
    try:
        done = cli("sync", "--db", str(db), "--json", env=env, cwd=tmp_path)  # default: min(4, 4 sources)
    finally:
        meet.close()
    assert not meet.failed, "the sources did not run at the same time"
    assert time.monotonic() - started >= 1.0  # every source waited for the held write lock ...
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["exit_code"] == 0
    assert [(o["source"], o["status"], o["error"]) for o in result["sources"]] == [(n, "success", None) for n in names]  # ... and none failed
    assert result["sources"][0]["run"]["records"] > 0 and result["sources"][0]["run"]["requests"] > 0
    # the facts: once per source, after every sync thread ended, on the main thread (where it may fork)
    assert refreshes == [("sync", name, True, []) for name in names]
    for name in names:  # each source counted its own requests, not its neighbours'
        requests = next(o["run"]["requests"] for o in result["sources"] if o["source"] == name)
        assert requests == len(accounts.sims[name].requests) - 1, name  # minus the --check request
    assert_same_store(db, reference)


def test_one_failing_source_does_not_affect_the_others(accounts: Accounts, tmp_path: Path, env: dict[str, str]) -> None:
    """Six sources on four threads: an outage (503 on every request) and a wrong token fail
    their own source only; the four others land whole, with their facts refreshed."""
    from kpisync.fixtures.zendesk_sim import ZendeskSimulator

    with ZendeskSimulator(accounts.worlds["zendesk_us"], email=EMAIL, api_token="tokC-5e4d3c2b1a09") as down:
        down.faults.random(1.0, statuses=(503,))
        accounts.config(
            tmp_path / "kpisync.toml",
            zendesk_down={"connector": "zendesk", "base_url": down.url, "email": EMAIL, "api_token": "tokC-5e4d3c2b1a09"},
            zendesk_bad={"connector": "zendesk", "base_url": accounts.sims["zendesk"].url, "email": EMAIL, "api_token": "tokW-wrong-1234567"},
        )
        db = tmp_path / "s.db"
        done = cli("sync", "--db", str(db), "--json", env=accounts.env(env), cwd=tmp_path)
    assert done.returncode == 7, done.stderr  # partial
    result = json.loads(done.stdout)
    assert [(o["source"], o["status"]) for o in result["sources"]] == [
        ("zendesk", "success"), ("zendesk_eu", "success"), ("zendesk_us", "success"), ("freshdesk", "success"),
        ("zendesk_down", "failed"), ("zendesk_bad", "failed"),
    ]
    errors = {o["source"]: o["error"] for o in result["sources"]}
    assert errors["zendesk_down"] == "zendesk: GET /api/v2/users/me.json failed after 8 attempts: HTTP 503"
    assert errors["zendesk_bad"].startswith("zendesk: authentication failed (HTTP 401)")
    assert "sync finished: 4 of 6 sources synced (zendesk_down failed, zendesk_bad failed)" in done.stderr
    for name in ("zendesk", "zendesk_eu", "zendesk_us", "freshdesk"):
        stored = {r[0] for r in sqlite3.connect(db).execute("SELECT external_id FROM tickets WHERE source = ?", (name,))}
        assert stored == {str(t.id) for t in accounts.worlds[name].tickets}, name
        assert count(db, "ticket_facts", name) == len(stored), name
    assert count(db, "changed_tickets") == 0
    assert count(db, "tickets", "zendesk_down") == 0 and count(db, "tickets", "zendesk_bad") == 0
    with Store(db) as store:
        failed = {r["source"]: r["error"] for r in store.query("SELECT source, error FROM sync_runs WHERE status = 'failed'")}
        assert failed == {"zendesk_down": errors["zendesk_down"], "zendesk_bad": errors["zendesk_bad"]}
        assert store.query("SELECT count(*) AS n FROM sync_runs WHERE status = 'running'")[0]["n"] == 0


class Gates:
    """Holds every simulator's first ticket-export request until `open()`."""

    def __init__(self, sims: list[Any]) -> None:
        self.reached = [threading.Event() for _ in sims]
        self.released = threading.Event()
        self.answers = [sim.handle for sim in sims]
        self.sims = sims
        for i, sim in enumerate(sims):
            sim.handle = self._handler(i)

    def _handler(self, i: int) -> Any:
        answer = self.answers[i]

        def handle(request: Any) -> Any:
            if request.path == EXPORT and not self.reached[i].is_set():
                self.reached[i].set()
                self.released.wait(60)
            return answer(request)

        return handle

    def wait_all(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(event.wait(max(0.0, deadline - time.monotonic())) for event in self.reached)

    def open(self) -> None:
        self.released.set()
        for sim, answer in zip(self.sims, self.answers):
            sim.handle = answer


def test_sigterm_stops_every_source_at_a_committed_batch(accounts: Accounts, tmp_path: Path, env: dict[str, str]) -> None:
    """SIGTERM while three sources are each inside their ticket export: every one commits the
    page in hand with its cursor and stops; exit 130; no facts refresh; a rerun converges to the
    store of an uninterrupted sync."""
    config = tmp_path / "kpisync.toml"
    accounts.config(config)
    config.write_text(config.read_text().split("[sources.freshdesk]")[0])
    env = accounts.env(env)
    zendesks = [accounts.sims[name] for name in TOKENS]
    reference = tmp_path / "reference.db"
    assert kpisync("sync", "--db", str(reference), "--parallel", "1", env=env, cwd=tmp_path).returncode == 0

    db = tmp_path / "s.db"
    gates = Gates(zendesks)
    process = start_kpisync("sync", "--db", str(db), "--json", env=env, cwd=tmp_path)
    try:
        assert gates.wait_all(30), "the three sources were not in their exports at the same time"
        process.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # the signal lands while every thread still waits for its page
    finally:
        gates.open()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "error: interrupted; rerun to continue" in err
    result = json.loads(out)
    assert [(o["source"], o["status"]) for o in result["sources"]] == [(name, "interrupted") for name in TOKENS]
    with Store(db) as store:
        runs = store.query("SELECT source, status, streams FROM sync_runs ORDER BY source")
        assert [(r["source"], r["status"]) for r in runs] == sorted((name, "interrupted") for name in TOKENS)
        for run in runs:
            streams = {s["name"]: s for s in json.loads(run["streams"])}
            assert (streams["tickets"]["status"], streams["tickets"]["batches"]) == ("interrupted", 1), run["source"]
            assert "ticket_events" not in streams  # nothing started after the stop
            assert store.get_state(run["source"], "tickets") is not None  # the page's cursor, with its rows
            assert store.count("tickets", run["source"]) > 0
        assert store.query("SELECT count(*) AS n FROM changed_tickets")[0]["n"] > 0  # refresh left to the next run

    rerun = kpisync("sync", "--db", str(db), env=env, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert_same_store(db, reference)


def test_batches_committed_at_the_same_moment_by_several_threads_all_land(tmp_path: Path) -> None:
    """Four threads, each with its own Store connection, commit 25 batches in lock step (a
    barrier before every commit): SQLite's busy timeout serialises them; none fails."""
    db = tmp_path / "s.db"
    Store(db).close()
    threads, rounds, size = 4, 25, 20
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with Store(db) as store:
                for r in range(rounds):
                    users = [User(external_id=f"{r}-{i}", role="customer", name=f"user {n}/{r}/{i}") for i in range(size)]
                    barrier.wait(timeout=30)
                    store.write_batch(f"s{n}", "users", users, {"round": r})
        except BaseException as exc:  # noqa: BLE001 — reported by the assertion below
            errors.append(exc)
            barrier.abort()

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert errors == []
    with Store(db) as store:
        for n in range(threads):
            assert store.count("users", f"s{n}") == rounds * size
            assert store.get_state(f"s{n}", "users") == {"round": rounds - 1}


def test_parallel_option_is_checked_and_one_source_runs_on_the_main_thread(accounts: Accounts, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from kpisync.cli import sync_cmd

    accounts.config(tmp_path / "kpisync.toml")
    env = accounts.env(env)
    bad = cli("sync", "--db", str(tmp_path / "s.db"), "--parallel", "0", env=env, cwd=tmp_path)
    assert (bad.returncode, bad.stderr) == (2, "error: --parallel 0: give 1 (one source after another) or more\n")
    assert sync_cmd.SyncOptions().workers(1) == 1 and sync_cmd.SyncOptions().workers(9) == 4
    assert sync_cmd.SyncOptions(parallel=8).workers(3) == 3

    def no_threads(*args: Any) -> Any:
        raise AssertionError("a single source needs no thread")

    monkeypatch.setattr(sync_cmd, "_sync_parallel", no_threads)
    done = cli("sync", "--db", str(tmp_path / "s.db"), "--source", "zendesk_eu", "--parallel", "4", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert count(tmp_path / "s.db", "ticket_facts", "zendesk_eu") == len(accounts.worlds["zendesk_eu"].tickets)


def test_a_failed_facts_refresh_fails_its_source_only(accounts: Accounts, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The deferred refresh fails for one source (as a full disk would): that source ends failed
    with the reason, in the outcome and in `sync_runs`; the other source's facts are refreshed."""
    from kpisync.cli import sync_cmd
    from kpisync.core.errors import StoreError

    real = sync_cmd.refresh_facts

    def refresh(store: Store, source: str | None = None) -> Any:
        if source == "zendesk":
            raise StoreError("store s.db: the disk is full")
        return real(store, source)

    monkeypatch.setattr(sync_cmd, "refresh_facts", refresh)
    accounts.config(tmp_path / "kpisync.toml")
    db = tmp_path / "s.db"
    done = cli("sync", "--db", str(db), "--source", "zendesk", "--source", "zendesk_eu", "--json", env=accounts.env(env), cwd=tmp_path)
    assert done.returncode == 7, done.stderr
    error = "KPI facts refresh failed: store s.db: the disk is full"
    result = json.loads(done.stdout)
    assert [(o["source"], o["status"], o["error"]) for o in result["sources"]] == [("zendesk", "failed", error), ("zendesk_eu", "success", None)]
    assert result["sources"][0]["run"]["status"] == "failed" and result["sources"][0]["run"]["records"] > 0
    assert f"zendesk: failed: {error}" in done.stderr
    with Store(db) as store:
        runs = {r["source"]: (r["status"], r["error"]) for r in store.query("SELECT source, status, error FROM sync_runs")}
    assert runs == {"zendesk": ("failed", error), "zendesk_eu": ("success", None)}
    assert count(db, "ticket_facts", "zendesk_eu") == len(accounts.worlds["zendesk_eu"].tickets)
