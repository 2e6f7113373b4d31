"""Settings precedence: environment over file; env: references; one-line errors."""

from __future__ import annotations

import pytest

from kpisync.connectors.zendesk import ZendeskConnector
from kpisync.core.config import source_settings
from kpisync.core.errors import ConfigError


def test_environment_wins_over_file() -> None:
    config = {"sources": {"zendesk": {"subdomain": "file", "email": "a@b.c", "api_token": "t1"}}}
    env = {"KPISYNC_ZENDESK_SUBDOMAIN": "env"}
    settings = source_settings("zendesk", ZendeskConnector, config, env, use_keyring=False)
    assert settings.subdomain == "env"
    assert settings.api_token is not None and settings.api_token.get_secret_value() == "t1"


def test_env_reference_in_file_reads_the_variable() -> None:
    config = {"sources": {"zd": {"connector": "zendesk", "subdomain": "x", "email": "a@b.c", "api_token": "env:ZD_TOKEN"}}}
    settings = source_settings("zd", ZendeskConnector, config, {"ZD_TOKEN": "s3cret"}, use_keyring=False)
    assert settings.api_token is not None and settings.api_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_missing_credentials_name_the_settings() -> None:
    with pytest.raises(ConfigError, match="email' and 'api_token', or 'oauth_token'"):
        source_settings("zendesk", ZendeskConnector, {}, {"KPISYNC_ZENDESK_SUBDOMAIN": "x"}, use_keyring=False)


def test_unknown_setting_is_reported() -> None:
    config = {"sources": {"zendesk": {"subdomain": "x", "oauth_token": "t", "colour": "red"}}}
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        source_settings("zendesk", ZendeskConnector, config, {}, use_keyring=False)
