"""One social-channel rule for every help desk (docs/kpis.md, social_tickets).

Social networks and messaging apps (WhatsApp, Messenger, Instagram DM) are social; SMS, chat
widgets and e-mail are not. The same ticket as Zendesk (`via.channel`) and as Freshdesk
(`source` code, with the connector's default `social_sources`) must land in the same channel.
"""

from __future__ import annotations

import pytest

from kpisync.connectors.freshdesk import FreshdeskConfig
from kpisync.connectors.freshdesk import mapping as freshdesk
from kpisync.connectors.zendesk import mapping as zendesk

CREATED = "2026-03-02T09:00:00Z"
#: Freshdesk's default, as a user who sets nothing gets it.
DEFAULT_SOCIAL = frozenset(FreshdeskConfig.model_fields["social_sources"].default)


def from_zendesk(via_channel: str) -> tuple[str, bool]:
    data = {"id": 7, "via": {"channel": via_channel}, "created_at": CREATED, "status": "open"}
    ticket = zendesk.ticket(data, set(), None, "https://acme.zendesk.com")
    return ticket.channel, ticket.is_social


def from_freshdesk(source: int, social_sources: frozenset[int] = DEFAULT_SOCIAL) -> tuple[str, bool]:
    data = {"id": 7, "source": source, "created_at": CREATED, "status": 2}
    ticket = freshdesk.ticket(data, freshdesk.Labels(), social_sources, "https://acme.freshdesk.com", False)
    return ticket.channel, ticket.is_social


def test_a_whatsapp_ticket_is_social_in_both() -> None:
    assert from_zendesk("whatsapp") == from_freshdesk(13) == ("social", True)


@pytest.mark.parametrize(("via_channel", "source", "expected"), [
    ("twitter", 5, ("social", True)),
    ("facebook", 6, ("social", True)),       # Facebook post (Zendesk: also Messenger)
    ("facebook", 19, ("social", True)),      # Facebook Messenger message
    ("instagram_dm", 17, ("social", True)),
    ("sms", 22, ("sms", False)),
    ("chat", 7, ("chat", False)),
    ("email", 1, ("email", False)),
])
def test_both_help_desks_classify_a_channel_alike(via_channel: str, source: int, expected: tuple[str, bool]) -> None:
    assert from_zendesk(via_channel) == from_freshdesk(source) == expected


def test_freshdesk_whatsapp_left_out_by_the_user_keeps_its_own_channel() -> None:
    assert from_freshdesk(13, DEFAULT_SOCIAL - {13}) == ("messaging", False)
