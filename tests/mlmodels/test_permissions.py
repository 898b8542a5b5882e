"""Persona × ML model endpoint or admin page → expected status (anon, alice: user, mod:
moderator, root: admin). Users list, view, start, stop and invoke models and read their
graphs and predictions (``can_use_science``); only admins register, change and delete them
(``can_manage_models``). Runs against a fake engine with one running model ``{m}``."""

import pytest

from mlmodels import services

R = 302  # admin pages send visitors without staff rights to the sign-in page
PERSONAS = ("anon", "alice", "mod", "root")
NEW = {"name": "new-model", "image": "energy:2"}

# method, url, body, {anon, alice, mod, root}
API = [
    ("get", "/api/models/", None, (401, 200, 200, 200)),
    ("post", "/api/models/", NEW, (401, 403, 403, 201)),
    ("get", "/api/models/{m}/", None, (401, 200, 200, 200)),
    ("patch", "/api/models/{m}/", {"description": "ridge"}, (401, 403, 403, 200)),
    ("put", "/api/models/{m}/", {"name": "energy", "image": "energy:1", "version": "1.0"}, (401, 403, 403, 200)),
    ("delete", "/api/models/{m}/", None, (401, 403, 403, 204)),
    ("post", "/api/models/{m}/start/", None, (401, 200, 200, 200)),
    ("post", "/api/models/{m}/stop/", None, (401, 200, 200, 200)),
    ("get", "/api/models/{m}/heartbeats/", None, (401, 200, 200, 200)),
    ("get", "/api/models/{m}/predictions/", None, (401, 200, 200, 200)),
    ("post", "/api/models/{m}/invocations/", {"instances": ["H2O"]}, (401, 200, 200, 200)),
    ("get", "/api/models/999999/", None, (401, 404, 404, 404)),
    ("post", "/api/models/999999/invocations/", {}, (401, 404, 404, 404)),
]

PAGES = [
    ("get", "/admin/mlmodels/mlmodel/", None, (R, R, 200, 200)),
    ("get", "/admin/mlmodels/mlmodel/add/", None, (R, R, 403, 200)),
    ("get", "/admin/mlmodels/mlmodel/{m}/change/", None, (R, R, 200, 200)),
    ("get", "/admin/mlmodels/mlmodel/{m}/delete/", None, (R, R, 403, 200)),
    ("get", "/admin/mlmodels/prediction/", None, (R, R, 200, 200)),
    ("get", "/admin/mlmodels/prediction/add/", None, (R, R, 403, 403)),
]


def _cases(rows):
    for method, url, body, statuses in rows:
        for persona, status in zip(PERSONAS, statuses, strict=True):
            yield pytest.param(method, url, body, persona, status, id=f"{persona}-{method}-{url}")


@pytest.mark.parametrize(("method", "url", "body", "persona", "expected"), list(_cases(API)))
def test_it_enforces_the_rules_in_the_api(api_as, running_model, method, url, body, persona, expected):
    response = getattr(api_as(persona), method)(url.format(m=running_model.pk), body, format="json")
    assert response.status_code == expected, response.content


@pytest.mark.parametrize(("method", "url", "body", "persona", "expected"), list(_cases(PAGES)))
def test_it_enforces_the_rules_in_the_admin(page_as, running_model, method, url, body, persona, expected):
    response = getattr(page_as(persona), method)(url.format(m=running_model.pk), body)
    assert response.status_code == expected


def test_it_lets_staff_start_and_stop_from_the_admin_but_only_admins_delete(page_as, running_model, fake_docker):
    url = "/admin/mlmodels/mlmodel/"
    response = page_as("mod").post(url, {"action": "stop_models", "_selected_action": [running_model.pk]})
    assert response.status_code == 302 and fake_docker.containers == {}
    response = page_as("mod").post(url, {"action": "delete_selected", "_selected_action": [running_model.pk]})
    assert response.status_code == 302 and type(running_model).objects.exists()  # no such action for moderators
    page_as("root").post(url, {"action": "delete_selected", "_selected_action": [running_model.pk], "post": "yes"})
    assert not type(running_model).objects.exists()


def test_it_registers_through_the_admin_with_the_services_rules(page_as, fake_docker):
    response = page_as("root").post("/admin/mlmodels/mlmodel/add/", {
        "name": "energy", "image": "energy:1", "environment": "{}", "start_timeout": 30, "description": "",
        "version": "", "example_input": "null", "dataset_snapshot": "null"})
    assert response.status_code == 302, response.content.decode()[:2000]
    model = services.MLModel.objects.get()
    assert (model.name, model.created_by.username, model.state) == ("energy", "root", "stopped")
