"""Bluesky connector (entry point `bluesky`)."""

from .connector import BlueskyConfig, BlueskyConnector

__all__ = ["BlueskyConfig", "BlueskyConnector"]
