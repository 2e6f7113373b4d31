"""Phone numbers as a join key between help-desk customers and shop orders (converted tickets).

Phone and chat customers often have no e-mail on file, and orders carry a phone, so a ticket's
requester and an order's buyer can also meet by phone. People write the same number in many
ways ("+49 30 1234567", "0049 30 1234567", "+49 (0)30 123 45 67", "030/1234567"), so the store
keeps a *normalised* form next to the text (``users.phone_norm``, ``orders.customer_phone_norm``):

* digits only; an extension ("ext. 12", "x12", "#12") and a German-style "(0)" after the country
  code are dropped;
* written with a country code ("+…", or the international prefix "00…") → the country code and
  the number: ``"49301234567"``;
* written without one → ``"0"`` + the national number without its trunk "0":
  ``"030 1234567"`` → ``"0301234567"``, ``"(415) 555-0100"`` → ``"04155550100"``. No country
  code starts with 0, so the leading 0 marks "country unknown";
* too short (a national number under 7 digits, an international one under 9), longer than
  E.164's 15 digits, or one digit repeated ("000 000 0000") → None: never matches.

Which country an unmarked number belongs to is a reporting setting (``[metrics]
default_phone_country``), not a property of the synced data, so it is applied when a key is
built (:func:`phone_key`, and :func:`phone_key_sql` for the same rule inside a query): changing
it needs no re-sync. Without the setting, numbers without a country code only meet each other.
"""

from __future__ import annotations

import re

__all__ = ["normalise_phone", "phone_key", "phone_key_sql", "valid_country_code"]

#: Shortest national number kept (after the trunk 0) and shortest international one: shorter ones
#: are internal extensions, service numbers or typos, and too likely to be shared by strangers.
MIN_NATIONAL_DIGITS = 7
MIN_INTERNATIONAL_DIGITS = 9
MAX_DIGITS = 15  # E.164 (ITU-T E.164 §6.1): at most 15 digits including the country code

_EXTENSION = re.compile(r"(?i)\s*(?:ext\.?|extension|x|#|;|,).*$")
_TRUNK_AFTER_CODE = re.compile(r"^(\+\s*\d{1,3})\s*\(0\)")  # "+49 (0)30 …": the (0) is not dialled from abroad


def normalise_phone(phone: str | None) -> str | None:
    """The stored join key of a phone number (see the module docstring), or None."""
    if not phone:
        return None
    text = _EXTENSION.sub("", phone.strip())
    text = _TRUNK_AFTER_CODE.sub(r"\1", text.lstrip("( "))
    digits = "".join(ch for ch in text if "0" <= ch <= "9")
    if text.startswith("+"):
        international = digits
    elif digits.startswith("00"):
        international = digits[2:]
    else:
        national = digits[1:] if digits.startswith("0") else digits
        if len(national) < MIN_NATIONAL_DIGITS or len(national) >= MAX_DIGITS or _one_digit(national):
            return None
        return "0" + national
    if (len(international) < MIN_INTERNATIONAL_DIGITS or len(international) > MAX_DIGITS
            or international.startswith("0") or _one_digit(international[3:])):  # fmt: skip
        return None
    return international


def valid_country_code(code: str | int | None) -> str | None:
    """A default country code as digits ("49" from 49, "+49" or "0049"); ValueError if not one."""
    if code is None:
        return None
    text = str(code).strip().lstrip("+")
    if text.startswith("00"):
        text = text[2:]
    if not text.isdigit() or not 1 <= len(text) <= 3 or text.startswith("0"):
        raise ValueError(f"not a country calling code: {code!r} (e.g. \"49\" for Germany, \"1\" for the US)")
    return text


def phone_key(norm: str | None, default_country: str | None = None) -> str | None:
    """The match key of a stored form: numbers without a country code get `default_country`.

    North America writes its trunk prefix "1" the way Europe writes "0" ("1 415 555 0100"), so
    with default country "1" an 11-digit national number starting with 1 drops it.
    """
    if norm is None or not norm.startswith("0") or default_country is None:
        return norm
    national = norm[1:]
    if default_country == "1" and len(national) == 11 and national.startswith("1"):
        national = national[1:]
    return default_country + national


def phone_key_sql(column: str, default_country: str | None = None) -> str:
    """:func:`phone_key` as an SQL expression over `column` (a stored form); NULL stays NULL."""
    if default_country is None:
        return column
    code = valid_country_code(default_country)  # digits only: safe to inline
    if code == "1":
        return (f"CASE WHEN substr({column}, 1, 1) <> '0' THEN {column} "
                f"WHEN length({column}) = 12 AND substr({column}, 2, 1) = '1' THEN '1' || substr({column}, 3) "
                f"ELSE '1' || substr({column}, 2) END")  # fmt: skip
    return f"CASE WHEN substr({column}, 1, 1) = '0' THEN '{code}' || substr({column}, 2) ELSE {column} END"


def _one_digit(digits: str) -> bool:
    """Placeholders such as 0000000 or 1111111 (the whole number one repeated digit)."""
    return len(set(digits)) <= 1
