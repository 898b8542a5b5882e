"""No N+1: every list endpoint of the API answers 30 rows in as many queries as 3.

Each case fills the database with 3 rows (with the relations its serializer shows: owners,
files, pseudopotentials, results...), counts the queries of one request, adds 27 rows and
counts again. Streamed answers (the dataset export) are counted while they are read.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from calculations.models import (
    AnalysisResult,
    Artifact,
    Calculation,
    CalculationEvent,
    CalculationFile,
    LogLine,
    Result,
)
from calculations.states import State
from clusters import services as cluster_services
from tests.factories import ClusterFactory, MoleculeFactory, PseudopotentialFactory, UserFactory

BUDGET = 8  # queries per list request, whatever the number of rows


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def world(root):
    """The cluster, molecule, pseudopotentials and calculation the rows hang on."""
    cluster = ClusterFactory(name="hpc1", engines=["siesta"])
    molecule = MoleculeFactory(name="water", owner=root)
    pseudos = [PseudopotentialFactory(element="O", name="O.psf"), PseudopotentialFactory(element="H", name="H.psf")]
    calc = _calculations(cluster, molecule, pseudos, root, 1)[0]
    _key, plaintext = cluster_services.create_key(actor=root, cluster=cluster, name="agent")
    return {"root": root, "cluster": cluster, "molecule": molecule, "pseudos": pseudos, "calc": calc,
            "agent_key": plaintext}


def _calculations(cluster, molecule, pseudos, owner, n, state=State.QUEUED) -> list[Calculation]:
    """``n`` calculations, each with an input file, two pseudopotentials and an event."""
    start = Calculation.objects.count()
    calcs = Calculation.objects.bulk_create([
        Calculation(name=f"c{start + i}", owner=owner, molecule=molecule, cluster=cluster, engine="siesta",
                    config={"fdf": "SystemLabel x"}, structure=molecule.as_spec(), state=state,
                    inputs_hash=f"{start + i:064d}") for i in range(n)])
    for calc in calcs:
        calc.pseudopotentials.set(pseudos)
        CalculationFile.objects.create(calculation=calc, name="in.fdf", file=f"x/{calc.pk}", sha256="0" * 64, size=1)
        CalculationEvent.objects.create(calculation=calc, attempt=1, from_state=state, to_state=state, actor=owner)
        Result.objects.create(calculation=calc, attempt=1, step=0, key="extracted", data={"energy": -1.0})
    return calcs


def _keys(w: dict, n: int) -> None:
    for i in range(n):
        cluster_services.create_key(actor=w["root"], cluster=w["cluster"], name=f"k{i}")


def _events(w: dict, n: int) -> None:
    CalculationEvent.objects.bulk_create([CalculationEvent(calculation=w["calc"], attempt=1, from_state="queued",
                                                           to_state="queued", actor=w["root"]) for _ in range(n)])


def _results(w: dict, n: int) -> None:
    calc = w["calc"]
    start = Result.objects.filter(calculation=calc).count()
    for step in range(start, start + n):
        Result.objects.create(calculation=calc, attempt=1, step=step, key="extracted", data={"e": step})
        AnalysisResult.objects.create(calculation=calc, attempt=1, step=step, name="energy_summary", status="ok")
        Artifact.objects.create(calculation=calc, attempt=1, step=step, name="p.png", content_type="image/png",
                                file=f"a/{step}", size=1)


def _logs(w: dict, n: int) -> None:
    LogLine.objects.bulk_create([LogLine(cluster=w["cluster"], calculation=w["calc"], message=f"m{i}",
                                         time="2026-01-01T00:00:00Z") for i in range(n)])


#: ``ADD[kind](world, n)`` adds ``n`` rows of what ``kind`` lists.
ADD = {
    "users": lambda w, n: UserFactory.create_batch(n),
    "molecules": lambda w, n: MoleculeFactory.create_batch(n, owner=w["root"]),
    "pseudopotentials": lambda w, n: PseudopotentialFactory.create_batch(n, uploaded_by=w["root"]),
    "clusters": lambda w, n: ClusterFactory.create_batch(n),
    "keys": _keys,
    "calculations": lambda w, n: _calculations(w["cluster"], w["molecule"], w["pseudos"], w["root"], n),
    "dataset": lambda w, n: _calculations(w["cluster"], w["molecule"], w["pseudos"], w["root"], n,
                                          state=State.SUCCEEDED),
    "events": _events,
    "results": _results,
    "logs": _logs,
}
ADD["pending"] = ADD["calculations"]


# what rows to add, the list that shows them
ENDPOINTS = [
    ("users", "/api/users/"),
    ("molecules", "/api/molecules/"),
    ("pseudopotentials", "/api/pseudopotentials/"),
    ("clusters", "/api/clusters/"),
    ("keys", "/api/clusters/{cluster}/keys/"),
    ("calculations", "/api/calculations/"),
    ("events", "/api/calculations/{calc}/events/"),
    ("results", "/api/calculations/{calc}/results/"),
    ("logs", "/api/logs/"),
    ("logs", "/api/logs/?after=0"),
    ("dataset", "/api/datasets/export/?format=jsonl"),
    ("dataset", "/api/datasets/export/?format=csv"),
    ("pending", "/api/agent/v1/calculations/?processed=false"),
]


def _count(client: APIClient, url: str) -> tuple[int, bytes]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = b"".join(response.streaming_content) if response.streaming else response.content
    return len(queries), body


def _client(kind: str, w: dict) -> APIClient:
    client = APIClient()
    if kind == "pending":
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {w['agent_key']}")
    else:
        client.force_authenticate(w["root"])
    return client


@pytest.mark.parametrize(("kind", "url"), ENDPOINTS, ids=[url for _kind, url in ENDPOINTS])
def test_it_lists_30_rows_in_as_many_queries_as_3(world, kind, url):
    url = url.format(cluster=world["cluster"].pk, calc=world["calc"].pk)
    client = _client(kind, world)
    client.get(url)  # once ahead: an agent key's first use records its last use (one UPDATE)
    ADD[kind](world, 3)
    few, few_body = _count(client, url)
    ADD[kind](world, 27)
    many, many_body = _count(client, url)
    assert len(many_body) > len(few_body)  # the 27 new rows are in the answer
    assert many == few <= BUDGET


def test_it_serves_the_analyses_catalogue_without_queries_per_entry(world):
    queries, body = _count(_client("analyses", world), "/api/analyses/")
    assert b"iv_curve" in body and queries <= 2
