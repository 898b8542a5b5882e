"""Shared fixtures: personas (alice, bob: users; mod: moderator; root: admin) and clients."""

import pytest
from django.core.servers.basehttp import WSGIServer
from rest_framework.test import APIClient

from tests.factories import PASSWORD, UserFactory

# The test server (live_server) queues as many waiting connections as a real one: tests
# open 50 at once, and Django's development default (10) resets some on a busy machine.
WSGIServer.request_queue_size = 128


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", role="user")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob", role="user")


@pytest.fixture
def mod(db):
    return UserFactory(username="mod", role="moderator")


@pytest.fixture
def root(db):
    return UserFactory(username="root", role="admin")


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def personas(alice, bob, mod, root):
    return {"anon": None, "alice": alice, "bob": bob, "mod": mod, "root": root}


def api_client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def api_as(personas):
    """``api_as("mod")``: an API client signed in as that persona (``"anon"``: nobody)."""
    return lambda name: api_client_for(personas[name])


@pytest.fixture
def page_as(personas, client):
    """``page_as("alice")``: a Django test client with that persona's session."""

    def make(name):
        from django.test import Client

        c = Client()
        if personas[name] is not None:
            c.force_login(personas[name])
        return c

    return make
