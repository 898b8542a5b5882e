"""Bad input gets a 4xx with field-level messages, and nothing is half-written."""

import pytest

from accounts.models import User
from tests.factories import PASSWORD


def create(api_as, **overrides):
    body = {"username": "carol", "email": "carol@example.org", "password": PASSWORD, "role": "user", **overrides}
    return api_as("root").post("/api/users/", body, format="json")


def test_it_rejects_an_unknown_role(api_as):
    response = create(api_as, role="wizard")
    assert response.status_code == 400
    assert "role" in response.json()
    assert not User.objects.filter(username="carol").exists()


def test_it_rejects_a_weak_password_with_the_validators_messages(api_as):
    response = create(api_as, password="12345")
    assert response.status_code == 400
    messages = " ".join(response.json()["password"])
    assert "too short" in messages and "too common" in messages
    assert not User.objects.filter(username="carol").exists()


def test_it_rejects_a_duplicate_email(api_as, alice):
    response = create(api_as, email=alice.email)
    assert response.status_code == 400
    assert "email" in response.json()
    assert User.objects.filter(email=alice.email).count() == 1


def test_it_rejects_malformed_json_with_a_message(api_as):
    response = api_as("root").generic("POST", "/api/users/", '{"username": "x",', content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_it_refuses_a_moderator_deleting_a_user(api_as, bob):
    response = api_as("mod").delete(f"/api/users/{bob.pk}/")
    assert response.status_code == 403
    assert response.json()["detail"]
    assert User.objects.filter(pk=bob.pk).exists()


@pytest.mark.parametrize("target", ["bob", "mod"])
def test_it_refuses_a_moderator_raising_a_role_their_own_included(api_as, personas, bob, target):
    user = bob if target == "bob" else personas["mod"]
    response = api_as("mod").patch(f"/api/users/{user.pk}/", {"role": "admin", "first_name": "X"}, format="json")
    assert response.status_code == 403
    user.refresh_from_db()
    assert user.role != "admin" and user.first_name != "X"


def test_it_changes_nothing_when_one_field_of_an_update_is_bad(api_as, bob, alice):
    response = api_as("root").patch(f"/api/users/{bob.pk}/", {"first_name": "Robert", "email": alice.email},
                                    format="json")
    assert response.status_code == 400
    bob.refresh_from_db()
    assert bob.first_name != "Robert"


def test_it_requires_the_current_password_to_change_ones_own(api_as, alice):
    response = api_as("alice").post("/api/me/password/", {"password": "a brand new passphrase"}, format="json")
    assert response.status_code == 403
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_it_keeps_what_was_typed_when_the_new_user_form_has_an_error(page_as, alice):
    page = page_as("root").post("/users/new/", {
        "username": "dave", "email": alice.email, "role": "user",
        "password1": PASSWORD, "password2": PASSWORD})
    assert page.status_code == 400
    html = page.content.decode()
    assert 'value="dave"' in html
    assert "already exists" in html
    assert not User.objects.filter(username="dave").exists()


def test_it_shows_password_errors_next_to_the_field(page_as, bob):
    page = page_as("mod").post(f"/users/{bob.pk}/password/", {"new_password1": "short", "new_password2": "short"})
    assert page.status_code == 400
    assert "too short" in page.content.decode()
