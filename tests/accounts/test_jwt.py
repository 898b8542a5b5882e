"""JWT: refresh cookie, rotation, logout, blocking and revocation end access at once."""

import pytest
from django.conf import settings
from django.contrib.auth import authenticate
from django.test import RequestFactory
from rest_framework.test import APIClient

COOKIE = settings.JWT_REFRESH_COOKIE


def sign_in(client: APIClient, user, password) -> str:
    response = client.post("/api/auth/token/", {"username": user.username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["access"]


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


@pytest.fixture
def client_():
    return APIClient()


def test_it_returns_the_access_token_and_sets_an_httponly_samesite_refresh_cookie(client_, alice, password):
    response = client_.post("/api/auth/token/", {"username": "alice", "password": password}, format="json")
    assert set(response.json()) == {"access"}
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/api/auth/"
    assert bearer(response.json()["access"]).get("/api/me/").json()["username"] == "alice"


def test_it_refuses_a_wrong_password_with_a_message(client_, alice):
    response = client_.post("/api/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 401
    assert "Wrong username or password" in response.json()["detail"]
    assert COOKIE not in response.cookies


def test_it_rotates_the_refresh_cookie_and_refuses_the_old_one(client_, alice, password):
    sign_in(client_, alice, password)
    old = client_.cookies[COOKIE].value
    response = client_.post("/api/auth/refresh/")
    assert response.status_code == 200
    new = response.cookies[COOKIE].value
    assert new != old
    assert bearer(response.json()["access"]).get("/api/me/").status_code == 200
    replay = APIClient()
    replay.cookies[COOKIE] = old
    assert replay.post("/api/auth/refresh/").status_code == 401


def test_it_refuses_refresh_without_a_cookie(client_):
    response = client_.post("/api/auth/refresh/")
    assert response.status_code == 401
    assert "refresh" in response.json()["detail"].lower()


def test_it_blacklists_the_refresh_token_on_logout(client_, alice, password):
    sign_in(client_, alice, password)
    old = client_.cookies[COOKIE].value
    assert client_.post("/api/auth/logout/").status_code == 204
    replay = APIClient()
    replay.cookies[COOKIE] = old
    assert replay.post("/api/auth/refresh/").status_code == 401


def test_it_ends_access_at_once_when_a_user_is_blocked(client_, alice, mod, password):
    access = sign_in(client_, alice, password)
    assert bearer(access).get("/api/me/").status_code == 200
    moderator = APIClient()
    moderator.force_authenticate(mod)
    assert moderator.post(f"/api/users/{alice.pk}/block/").status_code == 200
    assert bearer(access).get("/api/me/").status_code == 401
    assert client_.post("/api/auth/refresh/").status_code == 401
    again = APIClient().post("/api/auth/token/", {"username": "alice", "password": password}, format="json")
    assert again.status_code == 401


def test_it_ends_a_blocked_users_browser_session(client, alice, mod, password):
    client.force_login(alice)
    assert client.get("/").status_code == 200
    alice.is_active = False
    alice.save()
    assert client.get("/").status_code == 302
    request = RequestFactory().post("/accounts/login/")
    assert authenticate(request, username="alice", password=password) is None


def test_it_lets_an_admin_revoke_every_refresh_token_of_a_user(alice, root, password):
    laptop, desktop = APIClient(), APIClient()
    sign_in(laptop, alice, password)
    sign_in(desktop, alice, password)
    admin = APIClient()
    admin.force_authenticate(root)
    response = admin.post(f"/api/users/{alice.pk}/revoke-tokens/")
    assert response.json() == {"revoked": 2}
    assert laptop.post("/api/auth/refresh/").status_code == 401
    assert desktop.post("/api/auth/refresh/").status_code == 401


def test_it_uses_a_five_minute_access_lifetime_by_default():
    assert settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds() == 300


def test_it_refuses_an_expired_access_token(client_, alice, password, time_machine):
    time_machine.move_to("2026-01-01 12:00:00", tick=False)
    access = sign_in(client_, alice, password)
    time_machine.move_to("2026-01-01 12:05:01", tick=False)
    assert bearer(access).get("/api/me/").status_code == 401
