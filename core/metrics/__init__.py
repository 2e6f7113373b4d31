"""KPI building blocks: business-hours arithmetic, robust statistics and time-series helpers.

Each module here is pure Python (stdlib only) so the metrics layer runs anywhere the store does.

The KPIs themselves are one function each, loaded on first use (importing this package stays
cheap for the math modules): `metrics.first_response_time(store, period="month")`, `metrics.kpi(
store, "csat", by="channel")`, `metrics.list_kpis()` — see `api.py`.
"""

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("_") or name == "api":
        raise AttributeError(name)
    api = importlib.import_module(f"{__name__}.api")
    try:
        return getattr(api, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
