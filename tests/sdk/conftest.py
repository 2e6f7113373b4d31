"""Markers of the SDK tests."""


def pytest_configure(config):  # type: ignore[no-untyped-def]
    config.addinivalue_line("markers", "plugin_install: pip-installs a scaffolded plugin into this environment (~20 s; runs in CI)")
