"""Mastodon connector (entry point `mastodon`)."""

from .connector import MastodonConfig, MastodonConnector

__all__ = ["MastodonConfig", "MastodonConnector"]
