"""Helprace's satisfaction export (CSV) → canonical ratings.

Helprace's API exposes no satisfaction (CSAT) data, so ratings come from the export a Helprace
admin downloads. Its exact columns are not documented anywhere we could read, so headers are
matched loosely (case, spaces and punctuation ignored) against these names:

    column      required  also accepted                                  meaning
    Ticket ID   yes       ticket, ticket #, ticket number, request id    the ticket's id (as in the API)
    Rating      yes       score, satisfaction, rate                      Good / Neutral / Bad (and
                                                                         synonyms) or a number 1..scale
    Rated At    yes       date, created, created at, time, submitted at  when the customer answered
                                                                         (UTC unless it carries an offset)
    Comment     no        feedback, remark                               the customer's words
    Agent       no        assignee, agent email, agent id                the agent rated: email or id
    Rating ID   no        id                                             a stable id of the answer

Words: good/great/satisfied/happy/positive → +1, neutral/okay → 0, bad/poor/unsatisfied/
unhappy/negative → −1, kept on a 1..3 scale (bad 1, neutral 2, good 3). Numbers 1..scale (default
5): above the middle +1, the middle 0, below −1. A row without a Rating ID gets the id
"<ticket>-<unix time of the answer>", so importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kpisync.core.errors import KpisyncError
from kpisync.core.models import Rating, normalise_email
from kpisync.core.timeutil import to_utc, unix

COLUMNS = {
    "ticket_id": ("ticketid", "ticket", "ticketno", "ticketnumber", "requestid"),
    "rating": ("rating", "score", "satisfaction", "rate"),
    "rated_at": ("ratedat", "date", "created", "createdat", "time", "submittedat", "datetime"),
    "comment": ("comment", "feedback", "remark"),
    "agent": ("agent", "assignee", "agentemail", "agentid"),
    "rating_id": ("ratingid", "id"),
}
REQUIRED = ("ticket_id", "rating", "rated_at")
POSITIVE = frozenset({"good", "great", "awesome", "satisfied", "happy", "positive", "yes", "👍", "😀", "🙂"})
NEUTRAL = frozenset({"neutral", "okay", "ok", "justokay", "average", "😐"})
NEGATIVE = frozenset({"bad", "poor", "notgood", "unsatisfied", "dissatisfied", "unhappy", "negative", "no", "👎", "🙁", "😞"})


@dataclass
class ImportResult:
    """Ratings read, and the rows skipped as (line number, reason)."""

    ratings: list[Rating] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower()) or header.strip()


def _columns(header: list[str], path: Path) -> dict[str, int]:
    """Our field → column index; a missing required column is an error for the whole file."""
    keys = [_key(h) for h in header]
    found: dict[str, int] = {}
    for name, aliases in COLUMNS.items():
        for alias in aliases:
            if alias in keys:
                found[name] = keys.index(alias)
                break
    missing = [n for n in REQUIRED if n not in found]
    if missing:
        names = {"ticket_id": "Ticket ID", "rating": "Rating", "rated_at": "Rated At"}
        raise KpisyncError(
            f"{path}: no {', '.join(names[m] for m in missing)} column in the header "
            f"(found: {', '.join(h for h in header if h) or 'nothing'})"
        )
    return found


def _score(text: str, scale: int) -> tuple[float, float, float, int]:
    """(value, scale_min, scale_max, sentiment) of a rating cell, or ValueError."""
    word = _key(text)  # "Just okay" → "justokay"; an emoji stays itself
    if word in POSITIVE:
        return 3.0, 1.0, 3.0, 1
    if word in NEUTRAL:
        return 2.0, 1.0, 3.0, 0
    if word in NEGATIVE:
        return 1.0, 1.0, 3.0, -1
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"unknown rating '{text}' (use Good/Neutral/Bad or a number 1..{scale})") from None
    if not 1 <= value <= scale:
        raise ValueError(f"rating {text} is outside 1..{scale} (set --scale for another scale)")
    middle = (1 + scale) / 2
    return value, 1.0, float(scale), 1 if value > middle else 0 if value == middle else -1


def read_ratings(path: Path, agents_by_email: Mapping[str, str] | None = None, scale: int = 5) -> ImportResult:
    """Parse the export at `path`; good rows become Ratings, bad rows are reported by line."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return parse(csv.reader(handle), path, agents_by_email or {}, scale)
    except FileNotFoundError:
        raise KpisyncError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise KpisyncError(f"{path}: not UTF-8 text (export the CSV as UTF-8)") from None
    except csv.Error as exc:
        raise KpisyncError(f"{path}: not a readable CSV file: {exc}") from None


def parse(reader: Iterable[list[str]], path: Path, agents_by_email: Mapping[str, str], scale: int) -> ImportResult:
    rows = iter(reader)
    header = next(rows, None)
    if not header:
        raise KpisyncError(f"{path}: the file is empty")
    cols = _columns(header, path)
    result = ImportResult()
    for row in rows:
        line = getattr(reader, "line_num", 0)
        if not any(cell.strip() for cell in row):
            continue

        def cell(name: str) -> str:
            index = cols.get(name)
            return row[index].strip() if index is not None and index < len(row) else ""

        try:
            result.ratings.append(_rating(cell, agents_by_email, scale))
        except ValueError as exc:
            result.errors.append((line, str(exc)))
    return result


def _rating(cell: Callable[[str], str], agents_by_email: Mapping[str, str], scale: int) -> Rating:
    ticket = cell("ticket_id").lstrip("#")
    if not ticket:
        raise ValueError("no ticket id")
    raw_rating = cell("rating")
    if not raw_rating:
        raise ValueError("no rating")
    value, low, high, sentiment = _score(raw_rating, scale)
    text = cell("rated_at")
    try:
        rated_at = to_utc(text)
    except ValueError:
        rated_at = None
    if rated_at is None:
        raise ValueError(f"unreadable date '{text}' (use YYYY-MM-DD HH:MM:SS, UTC)")
    agent = cell("agent")
    agent_id = agents_by_email.get(normalise_email(agent) or "") if "@" in agent else (agent or None)
    raw = {"ticket_id": ticket, "rating": raw_rating, "rated_at": text, "agent": agent or None}
    return Rating(
        external_id=cell("rating_id") or f"{ticket}-{unix(rated_at)}",
        ticket_id=ticket,
        kind="csat",
        scale_min=low,
        scale_max=high,
        raw_value=raw_rating,
        value=value,
        sentiment=sentiment,
        responded_at=rated_at,
        updated_at=rated_at,
        agent_id=agent_id,
        comment=cell("comment") or None,
        raw=raw,
    )
