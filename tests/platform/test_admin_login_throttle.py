"""Password guessing against the admin login is throttled per address and per username."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-staff-password"


@pytest.fixture
def staff_account(db):
    return get_user_model().objects.create_superuser("coach", "", PASSWORD)


def _login(client: Client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post("/admin/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_the_eleventh_attempt_in_a_minute_from_one_address_is_refused_unchecked(staff_account, rate_limit_clock):
    client = Client()
    for attempt in range(10):
        response = _login(client, f"guess{attempt}", "wrong")
        assert response.status_code == 200  # the login page again, with "enter a correct username"
    # even the right password is not checked now
    response = _login(client, "coach", PASSWORD)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert b"Too many login attempts. Try again in" in response.content
    assert "_auth_user_id" not in client.session
    # another address is not affected
    response = _login(Client(), "coach", PASSWORD, address="198.51.100.1")
    assert response.status_code == 302


def test_one_username_from_many_addresses_is_throttled_too(staff_account, rate_limit_clock):
    for attempt in range(30):
        assert _login(Client(), "coach", "wrong", address=f"10.0.{attempt}.1").status_code == 200
    assert _login(Client(), "coach", PASSWORD, address="10.1.0.1").status_code == 429


def test_a_normal_login_works_and_lands_in_the_admin(staff_account, rate_limit_clock):
    client = Client()
    response = _login(client, "coach", PASSWORD)
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
