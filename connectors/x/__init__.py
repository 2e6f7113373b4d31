"""X (Twitter) connector (entry point `x`)."""

from .connector import XConfig, XConnector

__all__ = ["XConfig", "XConnector"]
