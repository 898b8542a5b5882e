"""The base layout: sign-in, the eight sections, honest empty states, the API docs."""

import re

SECTIONS = ["/", "/analyses/", "/calculations/", "/molecules/", "/models/", "/clusters/", "/logs/", "/users/"]


def test_it_shows_the_eight_sections_in_the_navigation(page_as):
    html = page_as("alice").get("/").content.decode()
    nav = re.search(r'<nav aria-label="Sections">(.*?)</nav>', html, re.S).group(1)
    assert re.findall(r'href="([^"]+)"', nav) == SECTIONS


def test_it_marks_the_current_section(page_as):
    html = page_as("alice").get("/molecules/").content.decode()
    assert '<a href="/molecules/" aria-current="page">' in html


def test_it_signs_in_through_the_login_page(client, alice, password):
    response = client.post("/accounts/login/", {"username": "alice", "password": password})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_it_signs_out(page_as):
    client = page_as("alice")
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_it_shows_a_user_their_own_profile_instead_of_the_list(page_as, alice):
    response = page_as("alice").get("/users/")
    assert response["Location"] == f"/users/{alice.pk}/"


def test_it_lets_users_set_their_notification_level(page_as, alice):
    page_as("alice").post(f"/users/{alice.pk}/", {"first_name": "Alice", "last_name": "", "email": alice.email,
                                                  "notify_level": "ERROR"})
    alice.refresh_from_db()
    assert alice.notify_level == "ERROR"


def test_it_serves_the_api_docs_without_a_cdn(client):
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in html
    assert not re.search(r'(src|href)="https?://', html)
