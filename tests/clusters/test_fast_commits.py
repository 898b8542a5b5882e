"""siestaflow.lib.db: commits that do not wait for the disk, for heartbeats and predictions only."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from siestaflow.lib.db import commit_without_waiting_for_disk, insert_without_waiting_for_disk
from tests.clusters.conftest import PAYLOAD

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL setting")
SET = "SET LOCAL synchronous_commit TO OFF"


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@on_postgresql
def test_it_relaxes_only_the_current_transaction(transactional_db):
    with transaction.atomic():
        commit_without_waiting_for_disk()
        assert _synchronous_commit() == "off"
    assert _synchronous_commit() == "on"  # the next transactions wait for the disk again


def test_it_does_nothing_outside_a_transaction(transactional_db):
    with CaptureQueriesContext(connection) as queries:
        commit_without_waiting_for_disk()
    assert not queries.captured_queries


@on_postgresql
@pytest.mark.parametrize("fast", [True, False])
def test_it_commits_heartbeats_without_waiting_unless_configured_not_to(settings, agent_client, fast):
    settings.FAST_COMMITS = fast
    with CaptureQueriesContext(connection) as queries:
        assert agent_client.post("/api/agent/v1/heartbeat/", PAYLOAD, format="json").status_code == 200
    assert any(q["sql"] == SET for q in queries.captured_queries) is fast


def test_it_never_sends_the_setting_to_sqlite(agent_client):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite's side")
    with CaptureQueriesContext(connection) as queries:
        assert agent_client.post("/api/agent/v1/heartbeat/", PAYLOAD, format="json").status_code == 200
    assert not any("synchronous_commit" in q["sql"] for q in queries.captured_queries)


@on_postgresql
def test_it_relaxes_the_insert_of_one_row_in_the_insert_itself(transactional_db):
    from mlmodels.models import MLModel, Prediction

    model = MLModel.objects.create(name="m", image="m:1")
    with transaction.atomic():  # to look at the setting before the INSERT's transaction ends
        assert _synchronous_commit() == "on"
        row = insert_without_waiting_for_disk(Prediction(model=model, status="ok"), carrier="status")
        assert _synchronous_commit() == "off"
    assert _synchronous_commit() == "on"
    assert row.status == "ok" and Prediction.objects.get(pk=row.pk).status == "ok"


@pytest.mark.parametrize("fast", [True, False])
def test_it_inserts_plainly_when_configured_not_to_or_on_sqlite(settings, transactional_db, fast):
    from mlmodels.models import MLModel, Prediction

    settings.FAST_COMMITS = fast
    model = MLModel.objects.create(name="m", image="m:1")
    with CaptureQueriesContext(connection) as queries:
        row = insert_without_waiting_for_disk(Prediction(model=model, status="error"), carrier="status")
    relaxed = any("synchronous_commit" in q["sql"] for q in queries.captured_queries)
    assert relaxed is (fast and connection.vendor == "postgresql")
    assert len(queries.captured_queries) == 1 and Prediction.objects.get(pk=row.pk).status == "error"
