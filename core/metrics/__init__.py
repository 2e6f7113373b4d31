"""KPI building blocks: business-hours arithmetic, robust statistics and time-series helpers.

Each module here is pure Python (stdlib only) so the metrics layer runs anywhere the store does.
"""
