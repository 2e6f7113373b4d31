"""Zendesk connector."""
