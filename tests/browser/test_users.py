"""User administration in the browser: refused to plain users, done through the form by admins."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import User

pytestmark = pytest.mark.browser


def test_it_shows_a_plain_user_only_their_own_profile(page_of, alice, bob):
    page = page_of("alice")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Users").click()
    expect(page).to_have_url(re.compile(rf"/users/{alice.pk}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("alice")
    expect(page.get_by_role("link", name="New user")).to_have_count(0)
    expect(page.get_by_role("button", name="Block")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete user")).to_have_count(0)
    expect(page.get_by_text("bob")).to_have_count(0)


def test_it_refuses_the_new_user_form_to_a_plain_user(page_of):
    page = page_of("alice")
    response = page.goto("/users/new/")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_label("Username")).to_have_count(0)


def test_it_refuses_another_users_page_to_a_plain_user(page_of, bob):
    page = page_of("alice")
    response = page.goto(f"/users/{bob.pk}/")
    assert response.status == 404
    expect(page.get_by_text("bob")).to_have_count(0)


def test_it_lets_a_moderator_see_users_but_not_create_them(page_of):
    page = page_of("mod")
    page.goto("/users/")
    expect(page.get_by_role("row")).to_have_count(5)  # the header and alice, bob, mod, root
    expect(page.get_by_role("link", name="New user")).to_have_count(0)
    assert page.goto("/users/new/").status == 403


def test_it_lets_an_admin_create_a_user_through_the_form(page_of, password):
    page = page_of("root")
    page.goto("/users/")
    page.get_by_role("link", name="New user").click()
    page.get_by_label("Username").fill("carol")
    page.get_by_label("E-mail").fill("carol@example.org")
    page.get_by_label("Role").select_option(label="Moderator")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Password confirmation").fill(password)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_contain_text("User carol created.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("carol")
    carol = User.objects.get(username="carol")
    assert (carol.email, carol.role) == ("carol@example.org", User.Role.MODERATOR)
    expect(page).to_have_url(re.compile(rf"/users/{carol.pk}/$"))


def test_it_keeps_what_the_admin_typed_when_the_passwords_differ(page_of, password):
    page = page_of("root")
    page.goto("/users/new/")
    page.get_by_label("Username").fill("carol")
    page.get_by_label("E-mail").fill("carol@example.org")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Password confirmation").fill(password + "!")
    page.get_by_role("button", name="Create user").click()
    field = page.locator(".field", has=page.get_by_label("Password confirmation"))
    expect(field.get_by_role("alert")).to_contain_text("didn’t match")
    expect(page.get_by_label("Username")).to_have_value("carol")
    assert not User.objects.filter(username="carol").exists()
