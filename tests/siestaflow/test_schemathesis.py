"""schemathesis against the OpenAPI schema at /api/schema/: no request answers a 5xx.

Every operation of the schema gets a few generated requests (valid and invalid ones),
through the real WSGI application and database: the user API signed in as an admin with a
JWT (so every route is reachable), the agent API signed with a cluster's API key. Path
parameters are sometimes swapped for ids of rows that exist, so the requests reach real
objects and not only 404s. Bounded (``MAX_EXAMPLES`` per operation, no shrinking) to stay
within a couple of minutes on two cores.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import RefreshToken

from calculations.models import LogLine
from clusters import services as cluster_services
from siestaflow.wsgi import application
from tests.calculations.conftest import H2O_FDF
from tests.factories import ClusterFactory, MoleculeFactory, PseudopotentialFactory, UserFactory

MAX_EXAMPLES = 20
BOUNDED = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                   phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
AGENT = r"^/api/agent/"
# Starting and stopping models drives the Docker engine (tests/mlmodels covers it with a
# real one, marked ``docker``); their inputs are still fuzzed through create and edit.
DOCKER = r"^/api/models/\{id\}/(start|stop|invocations)/$"

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _one_connection():
    """Keep the test's connection (and transaction) open across requests, as Django's test
    client does: the WSGI handler would close it after each one."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def rows(db, tmp_path, settings):
    """A small world: users, two clusters (one with a key), molecules, pseudopotentials, a
    queued calculation with a file, log lines. Answers the ids a path parameter may take."""
    from calculations import services

    settings.MEDIA_ROOT = tmp_path / "media"
    root = UserFactory(username="root", role="admin")
    bob = UserFactory(username="bob")
    cluster = ClusterFactory(name="hpc1", engines=["siesta", "pyscf", "command"])
    ClusterFactory(name="hpc2")
    _key, plaintext = cluster_services.create_key(actor=root, cluster=cluster, name="agent")
    water = MoleculeFactory(name="water")
    pseudos = [PseudopotentialFactory(element="O", name="O.psf"), PseudopotentialFactory(element="H", name="H.psf")]
    calc = services.submit_calculation(
        owner=bob, name="water", cluster=cluster, engine="siesta", config={"fdf": H2O_FDF, "options": {}},
        molecule=water, pseudopotentials=pseudos, analyses=["energy_summary"], files=[("elec.TSHS", b"x")])
    line = LogLine.objects.create(cluster=cluster, calculation=calc, message="hello", time="2026-01-01T00:00Z")
    ids = sorted({root.pk, bob.pk, cluster.pk, water.pk, calc.pk, line.pk, *(p.pk for p in pseudos)})
    return {"root": root, "key": plaintext, "ids": ids, "clusters": [cluster.pk], "names": ["O.psf", "elec.TSHS"]}


def _served_schema() -> dict:
    """The schema /api/schema/ serves, built without a request (collection has no database)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


SCHEMA = schemathesis.openapi.from_dict(_served_schema())
# The non-lazy schema: schemathesis' fixture-based loader needs pytest < 9.
user_schema = SCHEMA.exclude(path_regex=AGENT).exclude(path_regex=DOCKER)
agent_schema = SCHEMA.include(path_regex=AGENT)


def test_it_fuzzes_the_schema_that_is_served(client):
    served = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert served.status_code == 200
    assert json.loads(served.content) == _served_schema()


def _call(case, data, rows, headers: dict) -> None:
    """Call ``case`` (its ids sometimes swapped for existing rows'), assert no 5xx."""
    for name, value in case.path_parameters.items():
        choices = {"cluster_pk": rows["clusters"], "name": rows["names"]}.get(name)
        if (choices or isinstance(value, int)) and data.draw(st.booleans(), label=f"existing {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(choices or rows["ids"]), label=name)
    if case.path == "/api/agent/v1/claim/" and isinstance(case.body, dict) and "wait" in case.body:
        case.body["wait"] = 0  # a long-poll waits up to 30 s for work: keep the run bounded
    response = case.call(app=application, headers=headers)
    assert response.status_code < 500, f"{response.status_code} for {case.as_curl_command()[:3000]}"


@user_schema.parametrize()
@user_schema.given(data=st.data())
@BOUNDED
def test_it_answers_no_5xx_in_the_user_api(case, data, rows):
    token = RefreshToken.for_user(rows["root"]).access_token
    _call(case, data, rows, {"Authorization": f"Bearer {token}"})


@agent_schema.parametrize()
@agent_schema.given(data=st.data())
@BOUNDED
def test_it_answers_no_5xx_in_the_agent_api(case, data, rows):
    _call(case, data, rows, {"Authorization": f"Api-Key {rows['key']}"})


WRITES = [(path, method) for path, operations in _served_schema()["paths"].items()
          for method in ("post", "put", "patch") if method in operations]


@pytest.mark.parametrize("payload", ["null", "[]", '"text"', "{"])
def test_it_answers_a_json_body_that_is_no_object_with_a_4xx_everywhere(rows, client, payload):
    """What schemathesis does not send: a body of another JSON type than the schema's."""
    token = RefreshToken.for_user(rows["root"]).access_token
    server_errors = []
    for path, method in WRITES:
        agent = path.startswith("/api/agent/")
        url = path.format(id=rows["ids"][0], cluster_pk=rows["clusters"][0], name="O.psf")
        auth = f"Api-Key {rows['key']}" if agent else f"Bearer {token}"
        response = client.generic(method.upper(), url, payload, content_type="application/json",
                                  HTTP_AUTHORIZATION=auth)
        if response.status_code >= 500:
            server_errors.append(f"{method.upper()} {url}: {response.status_code}")
    assert server_errors == []
