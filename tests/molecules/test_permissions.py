"""Persona × endpoint or admin page → expected status, for every molecules endpoint.

Any signed-in user views, creates, edits and deletes molecules and pseudopotentials
(``can_use_science``); anonymous callers get 401 from the API and the sign-in redirect from
the admin, where plain users are not staff. Follows tests/accounts/test_permission_matrix.py.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import api_client_for
from tests.factories import MoleculeFactory, PseudopotentialFactory, psf_bytes

R = 302  # the admin redirects anonymous visitors and non-staff to its sign-in page
NEW = {"name": "ammonia", "species": ["N", "H", "H", "H"],
       "positions": [[0, 0, 0.07], [0.94, 0, -0.31], [-0.47, 0.81, -0.31], [-0.47, -0.81, -0.31]]}
IMPORT = {"format": "xyz", "text": "1\nargon\nAr 0 0 0\n"}


def new_pseudo():
    return {"file": SimpleUploadedFile("N.psf", psf_bytes("N")), "flavour": "pbe"}


# method, url, body (a dict, or a callable making a multipart body), {anon, alice, mod, root}
API = [
    ("get", "/api/molecules/", None, (401, 200, 200, 200)),
    ("post", "/api/molecules/", NEW, (401, 201, 201, 201)),
    ("get", "/api/molecules/{molecule}/", None, (401, 200, 200, 200)),
    ("put", "/api/molecules/{molecule}/", {**NEW, "name": "renamed"}, (401, 200, 200, 200)),
    ("patch", "/api/molecules/{molecule}/", {"description": "edited"}, (401, 200, 200, 200)),
    ("delete", "/api/molecules/{molecule}/", None, (401, 204, 204, 204)),
    ("post", "/api/molecules/import/", IMPORT, (401, 201, 201, 201)),
    ("get", "/api/molecules/{molecule}/export/?format=xyz", None, (401, 200, 200, 200)),
    ("get", "/api/molecules/{molecule}/export/?format=fdf", None, (401, 200, 200, 200)),
    ("get", "/api/pseudopotentials/", None, (401, 200, 200, 200)),
    ("post", "/api/pseudopotentials/", new_pseudo, (401, 201, 201, 201)),
    ("get", "/api/pseudopotentials/{pseudo}/", None, (401, 200, 200, 200)),
    ("patch", "/api/pseudopotentials/{pseudo}/", {"flavour": "lda"}, (401, 200, 200, 200)),
    ("delete", "/api/pseudopotentials/{pseudo}/", None, (401, 204, 204, 204)),
    ("get", "/api/pseudopotentials/{pseudo}/download/", None, (401, 200, 200, 200)),
]
ADMIN = [
    ("get", "/admin/molecules/", None, (R, R, 200, 200)),
    ("get", "/admin/molecules/molecule/", None, (R, R, 200, 200)),
    ("get", "/admin/molecules/molecule/add/", None, (R, R, 200, 200)),
    ("get", "/admin/molecules/molecule/{molecule}/change/", None, (R, R, 200, 200)),
    ("get", "/admin/molecules/molecule/{molecule}/delete/", None, (R, R, 200, 200)),
    ("post", "/admin/molecules/molecule/{molecule}/delete/", {"post": "yes"}, (R, R, R, R)),
    ("get", "/admin/molecules/pseudopotential/", None, (R, R, 200, 200)),
    ("get", "/admin/molecules/pseudopotential/add/", None, (R, R, 200, 200)),
    ("get", "/admin/molecules/pseudopotential/{pseudo}/change/", None, (R, R, 200, 200)),
    ("get", "/admin/molecules/pseudopotential/{pseudo}/delete/", None, (R, R, 200, 200)),
]
PERSONAS = ("anon", "alice", "mod", "root")


def _cases(rows):
    for method, url, body, statuses in rows:
        for persona, status in zip(PERSONAS, statuses, strict=True):
            yield pytest.param(method, url, body, persona, status, id=f"{persona}-{method}-{url}")


@pytest.fixture
def objects(alice):
    return {"molecule": MoleculeFactory(owner=alice).pk, "pseudo": PseudopotentialFactory(uploaded_by=alice).pk}


@pytest.mark.parametrize(("method", "url", "body", "persona", "expected"), list(_cases(API)))
def test_it_enforces_the_rules_in_the_api(api_as, objects, method, url, body, persona, expected):
    client = api_as(persona)
    if callable(body):
        response = getattr(client, method)(url.format(**objects), body(), format="multipart")
    else:
        response = getattr(client, method)(url.format(**objects), body, format="json")
    assert response.status_code == expected, response.content


@pytest.mark.parametrize(("method", "url", "body", "persona", "expected"), list(_cases(ADMIN)))
def test_it_enforces_the_rules_in_the_admin(page_as, objects, method, url, body, persona, expected):
    response = getattr(page_as(persona), method)(url.format(**objects), body)
    assert response.status_code == expected


@pytest.mark.parametrize("url", ["/api/molecules/", "/api/pseudopotentials/"])
def test_it_refuses_a_blocked_user(alice, url):
    alice.is_active = False
    alice.save()
    response = api_client_for(alice).get(url)
    assert response.status_code == 403
