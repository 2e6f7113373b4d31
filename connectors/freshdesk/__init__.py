"""Freshdesk connector (entry point `freshdesk`)."""

from .connector import FreshdeskConfig, FreshdeskConnector

__all__ = ["FreshdeskConfig", "FreshdeskConnector"]
