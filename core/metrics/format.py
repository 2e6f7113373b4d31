"""Human-readable KPI values for terminal output (JSON keeps raw seconds and fractions)."""

from __future__ import annotations

from typing import Any


def duration(seconds: float) -> str:
    """3725 → "1h 2m"; 45 → "45s"; 200000 → "2d 7h"."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = seconds / 60
    if minutes < 60:
        rest = round(seconds % 60)
        return f"{int(minutes)}m {rest}s" if minutes < 10 and rest else f"{minutes:.0f}m"
    hours, minutes = divmod(int(round(minutes)), 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


#: A figure without a value (no data, or a snapshot of a period that has not begun): `null` in JSON.
NO_VALUE = "—"


def human(value: Any, unit: str) -> str:
    if value is None:
        return NO_VALUE
    if unit == "seconds":
        return duration(value)
    if unit == "fraction":
        return f"{value * 100:.1f}%"
    if unit == "currency":
        return f"{value:,.2f}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def number(value: float, signed: bool = False) -> str:
    """3.0 → "3", -2.5 → "−2.5" (a real minus sign, U+2212); `signed` adds "+" to positives."""
    text = f"{abs(value):g}"
    if value < 0:
        return "\u2212" + text
    return ("+" + text) if signed and value > 0 else text


def scale_label(low: float | None, high: float | None) -> str | None:
    """A rating scale as people write it: "1 to 5", "0 to 10", "−3 to +3" (never "-3-3").

    A scale that reaches below zero shows the sign of both ends, so the positive end reads as such.
    """
    if low is None or high is None:
        return None
    signed = low < 0
    return f"{number(low, signed)} to {number(high, signed)}"


def change(previous: Any, current: Any, unit: str) -> str:
    """"+12.5% (from 2h 3m)" style comparison text."""
    if previous is None or current is None:
        return NO_VALUE
    delta = current - previous
    if unit == "fraction":
        text = f"{delta * 100:+.1f} pts"
    elif unit == "seconds":
        text = ("+" if delta >= 0 else "-") + duration(delta)
    else:
        text = f"{delta:+,.2f}".rstrip("0").rstrip(".")
    if previous and unit != "fraction":
        text += f" ({delta / abs(previous) * 100:+.1f}%)"
    return text
