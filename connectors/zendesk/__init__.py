"""Zendesk Support connector (entry point `zendesk`)."""

from .connector import ZendeskConfig, ZendeskConnector

__all__ = ["ZendeskConfig", "ZendeskConnector"]
