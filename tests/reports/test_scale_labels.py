"""Rating scales read as people write them: "1 to 5", "−3 to +3" — never "-3-3".

A −3..+3 survey (some help desks rate effort or sentiment that way) on a tiny hand-built store:
the CSAT row, the report's detail line and a rendered team report all name the scale readably.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kpisync.core.metrics.engine import evaluate
from kpisync.core.metrics.format import number, scale_label
from kpisync.core.metrics.settings import MetricsSettings
from kpisync.core.models import Message, Rating, Record, Ticket, TicketStatusEvent, User
from kpisync.core.reports import render, team_report
from kpisync.core.reports.fmt import detail
from kpisync.core.store import Store

SETTINGS = MetricsSettings(timezone="UTC")
NOW = int(datetime(2026, 11, 15, tzinfo=UTC).timestamp())
OCTOBER = {"since": "2026-10-01", "until": "2026-11-01", "now": NOW, "settings": SETTINGS}


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=UTC)


def _store(path: Path, scale: tuple[float, float], scores: list[tuple[float, int]]) -> Store:
    """One solved ticket per score, rated the next day on `scale` with the given sentiment."""
    store = Store(path)
    records: list[Record] = [User(external_id="a1", name="Ann", role="agent"),
                             User(external_id="c1", name="Cy", role="customer")]
    for n, (score, mood) in enumerate(scores, start=1):
        tid = str(n)
        records += [
            Ticket(external_id=tid, created_at=at(n, 9), status="solved", status_category="resolved",
                   requester_id="c1", assignee_id="a1", channel="email"),
            Message(external_id=f"m{n}", ticket_id=tid, created_at=at(n, 9), author_id="c1", author_role="customer",
                    is_public=True),
            Message(external_id=f"r{n}", ticket_id=tid, created_at=at(n, 10), author_id="a1", author_role="agent",
                    is_public=True),
            TicketStatusEvent(external_id=f"s{n}", ticket_id=tid, at=at(n, 11), from_status="open", to_status="solved",
                              from_category="open", to_category="resolved"),
            Rating(external_id=f"q{n}", ticket_id=tid, kind="csat", scale_min=scale[0], scale_max=scale[1],
                   raw_value=f"{score:g}", value=score, sentiment=mood, responded_at=at(n + 1, 9), agent_id="a1"),
        ]
    store.write_batch("zd", "test", records, None)
    return store


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Store:
    # +3 satisfied, +1 neutral, −2 and −3 unsatisfied: CSAT 25 %, mean (3 + 1 − 2 − 3) / 4 = −0.25
    store = _store(tmp_path_factory.mktemp("scale") / "s.db", (-3, 3), [(3, 1), (1, 0), (-2, -1), (-3, -1)])
    yield store
    store.close()


@pytest.mark.parametrize(("low", "high", "text"), [
    (1, 5, "1 to 5"), (0, 10, "0 to 10"), (-3, 3, "−3 to +3"), (-103, 103, "−103 to +103"), (1.0, 5.0, "1 to 5"),
    (-2.5, 2.5, "−2.5 to +2.5"), (None, 5, None),
])
def test_scale_label(low: float | None, high: float | None, text: str | None) -> None:
    assert scale_label(low, high) == text


def test_number_uses_a_real_minus_sign() -> None:
    assert (number(-0.25), number(0.25), number(2, signed=True), number(0, signed=True)) == ("−0.25", "0.25", "+2", "0")


def test_csat_row_names_a_signed_scale_readably(signed: Store) -> None:
    row = evaluate(signed, "csat", **OCTOBER).rows[0]  # type: ignore[arg-type]
    assert (row["value"], row["mean_score"], row["scale"]) == (0.25, -0.25, "−3 to +3")
    assert detail("csat", row) == "1 satisfied · 1 neutral · 2 unsatisfied · mean −0.25 on −3 to +3"


def test_a_one_to_five_scale(tmp_path: Path) -> None:
    store = _store(tmp_path / "five.db", (1, 5), [(5, 1), (4, 1), (2, -1)])
    try:
        row = evaluate(store, "csat", **OCTOBER).rows[0]  # type: ignore[arg-type]
    finally:
        store.close()
    assert row["scale"] == "1 to 5"
    assert detail("csat", row).endswith("mean 3.667 on 1 to 5")


def test_team_report_shows_the_scale_readably(signed: Store) -> None:
    report = team_report(signed, SETTINGS, month="2026-10", now=NOW)
    for fmt in ("md", "html"):
        text = render(report, fmt)
        assert "on −3 to +3" in text, fmt
        assert "-3-3" not in text and "−3-3" not in text
