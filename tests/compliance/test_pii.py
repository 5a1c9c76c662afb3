"""PII redaction on realistic text."""

from __future__ import annotations

import pytest

from compliance.pii import hash_identifier, redact_pii, redact_pii_data


@pytest.mark.parametrize(
    "text",
    [
        "Hi coach, I'm Jane (jane.doe+diet@example.co.uk), text me on +44 7700 900123 after 6pm.",
        "My number is (415) 555-2671, email JANE@Example.com",
        "Call 0044-20-7946-0958 or 020 7946 0958 tomorrow",
    ],
)
def test_contacts_in_free_text_are_replaced_by_keyed_hashes(text):
    redacted = redact_pii(text)
    for secret in ("jane.doe+diet@example.co.uk", "7700 900123", "555-2671", "JANE@Example.com", "7946"):
        assert secret not in redacted
    assert "[email:" in redacted or "[phone:" in redacted


def test_quantities_dates_and_timestamps_survive():
    text = (
        "On 2026-01-05 at 2026-01-05T19:12:33.097335+00:00 I ate 450 kcal, 45 g protein; "
        "weights 120 150 180 200; logged 05/01/2026."
    )
    assert redact_pii(text) == text


def test_same_contact_gets_the_same_token_whatever_the_case():
    assert redact_pii("a@Example.com") == redact_pii("A@example.COM")
    assert hash_identifier("+1 (415) 555-2671", kind="phone") == hash_identifier("+14155552671", kind="phone")


def test_user_id_hash_is_not_normalised():
    assert hash_identifier("user_123", kind="user_id") != hash_identifier("user_0123", kind="user_id")
    assert hash_identifier("User_1", kind="user_id") != hash_identifier("user_1", kind="user_id")
    assert len(hash_identifier("user_1", kind="user_id")) == 64


def test_nested_payloads_are_redacted_keys_kept():
    payload = {"food_name": "Chicken", "note": "from bob@example.org", "tags": ["+33 6 12 34 56 78"]}
    redacted = redact_pii_data(payload)
    assert redacted["food_name"] == "Chicken"
    assert redacted["note"].startswith("from [email:")
    assert redacted["tags"][0].startswith("[phone:")
