"""Failed sign-ins are throttled per account and per address, with a clear message."""

import pytest
from django.conf import settings
from rest_framework.test import APIClient


def attempt(username, password, address="10.0.0.1"):
    return APIClient(REMOTE_ADDR=address).post(
        "/api/auth/token/", {"username": username, "password": password}, format="json")


@pytest.fixture
def limit():
    return settings.AXES_FAILURE_LIMIT


def test_it_locks_an_account_after_too_many_failures_from_any_address(alice, password, limit):
    for n in range(limit - 1):
        assert attempt("alice", "wrong", f"10.0.1.{n}").status_code == 401
    assert attempt("alice", "wrong", "10.0.1.99").status_code == 429  # the limit-th failure
    locked = attempt("alice", password, "10.0.2.1")
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.json()["detail"]


def test_it_locks_an_address_trying_many_accounts(alice, bob, password, limit):
    for n in range(limit):
        attempt(f"nobody{n}", "wrong", "10.0.3.3")
    assert attempt("bob", password, "10.0.3.3").status_code == 429
    assert attempt("bob", password, "10.0.4.4").status_code == 200


def test_it_shows_the_lockout_on_the_sign_in_page(client, alice, limit):
    for _ in range(limit):
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    page = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert page.status_code == 429
    assert "Too many failed sign-in attempts" in page.content.decode()


def test_it_forgets_an_accounts_failures_after_a_success(alice, password, limit):
    for n in range(limit - 1):
        attempt("alice", "wrong", f"10.0.5.{n}")
    assert attempt("alice", password, "10.0.6.1").status_code == 200
    assert attempt("alice", "wrong", "10.0.7.1").status_code == 401
    assert attempt("alice", password, "10.0.8.1").status_code == 200
