"""Reddit connector (entry point `reddit`)."""

from .connector import RedditConfig, RedditConnector

__all__ = ["RedditConfig", "RedditConnector"]
