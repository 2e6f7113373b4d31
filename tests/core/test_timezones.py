"""Help-desk zone names become IANA keys, and unknown names never reach zoneinfo."""

from __future__ import annotations

from zoneinfo import ZoneInfo, available_timezones

from kpisync.core.timezones import RAILS_TO_IANA, iana_zone


def test_rails_names_map_to_iana() -> None:
    assert iana_zone("Pacific Time (US & Canada)") == "America/Los_Angeles"
    assert iana_zone("Berlin") == "Europe/Berlin"
    assert iana_zone("Astana") == "Asia/Almaty"


def test_iana_names_pass_and_cities_are_found() -> None:
    assert iana_zone("Europe/Lisbon") == "Europe/Lisbon"
    assert iana_zone("Reykjavik") == "Atlantic/Reykjavik"


def test_unknown_names_give_none() -> None:
    assert iana_zone("Atlantis Standard Time") is None
    assert iana_zone("") is None and iana_zone(None) is None


def test_every_mapped_zone_exists() -> None:
    zones = available_timezones() | {"UTC"}
    assert [v for v in RAILS_TO_IANA.values() if v not in zones] == []
    ZoneInfo("UTC")
