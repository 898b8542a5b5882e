"""Signing in and out through the real login form, with the mouse and with the keyboard only."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_it_shows_the_error_on_a_wrong_password(page, alice):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not her password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_label("Username")).to_have_value("alice")


def test_it_lands_on_the_dashboard_after_signing_in(page, alice, password):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    expect(page.locator("header .who")).to_contain_text("alice")


def test_it_signs_out(page_of):
    page = page_of("alice")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))  # the session is gone


def test_it_signs_in_with_the_keyboard_only(page, alice, password):
    page.goto("/accounts/login/")
    expect(page.get_by_label("Username")).to_be_focused()  # autofocus: typing starts at once
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(password)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")


def test_it_offers_a_skip_link_as_the_first_tab_stop(page_of):
    page = page_of("alice")  # the dashboard: nothing has autofocus there
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()  # shown when focused, off-screen otherwise
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/#main$"))
