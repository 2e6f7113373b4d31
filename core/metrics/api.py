"""The Python API: every KPI as one function returning the rows `kpisync kpi --json` prints.

    from kpisync.core import metrics
    rows = metrics.first_response_time("kpisync.db", period="month", by="agent", hours="business")
    result = metrics.kpi("kpisync.db", "csat", since="2026-01-01", by="channel")   # rows + notes
    metrics.list_kpis()

`store` is a Store or a path; settings come from `settings=` (a MetricsSettings) or `config=`
(a kpisync.toml path), else defaults. Options are those of `engine.evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..config import load_config_file
from ..store import Store
from .engine import Result, evaluate
from .registry import all_kpis
from .settings import MetricsSettings, load_settings

StoreLike = Store | str | Path


@contextmanager
def _opened(store: StoreLike) -> Iterator[Store]:
    if isinstance(store, Store):
        yield store
        return
    with Store(store) as opened:
        yield opened


def _settings(settings: MetricsSettings | None, config: str | Path | None) -> MetricsSettings:
    if settings is not None:
        return settings
    if config is not None:
        return load_settings(load_config_file(config))
    return MetricsSettings()


def kpi(store: StoreLike, kpi_id: str, *, settings: MetricsSettings | None = None, config: str | Path | None = None,
        **options: Any) -> Result:
    """One KPI with its unit, definition, parameters, rows and notes."""
    with _opened(store) as opened:
        return evaluate(opened, kpi_id, settings=_settings(settings, config), **options)


def list_kpis() -> list[dict[str, Any]]:
    """id, unit, one-line definition, data needed and parameters of every KPI."""
    return [k.describe() for k in all_kpis().values()]


def _function(kpi_id: str, definition: str) -> Callable[..., list[dict[str, Any]]]:
    def run(store: StoreLike, **options: Any) -> list[dict[str, Any]]:
        return kpi(store, kpi_id, **options).rows

    run.__name__ = run.__qualname__ = kpi_id
    run.__doc__ = f"{definition}\n\nRows as `kpisync kpi {kpi_id} --json` prints them; options as `kpi()`."
    return run


for _id, _kpi in all_kpis().items():
    globals()[_id] = _function(_id, _kpi.definition)

__all__ = ["Result", "kpi", "list_kpis", *all_kpis()]
