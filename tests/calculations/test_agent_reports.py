"""POST /api/agent/v1/reports/: several events, log batches and results in one request and
one transaction, each answered as its own route answers it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calculations.models import Calculation, CalculationEvent, LogLine, Result
from calculations.serializers import MAX_REPORTS
from calculations.states import State
from tests.conftest import api_client_for

REPORTS = "/api/agent/v1/reports/"


@pytest.fixture
def claimed(submit, agent_client):
    calc = submit()
    assert agent_client.post("/api/agent/v1/claim/", {"max": 1}, format="json").json()["calculations"]
    return calc


def _run(calc_id):
    return [
        {"calculation": calc_id, "kind": "event", "body": {"seq": 1, "state": "running", "step": 0}},
        {"calculation": calc_id, "kind": "logs", "body": {"lines": [{"seq": 1, "message": "SCF 1"},
                                                                     {"seq": 2, "message": "SCF 2"}]}},
        {"calculation": calc_id, "kind": "event", "body": {"seq": 2, "state": "validating"}},
        {"calculation": calc_id, "kind": "event", "body": {"seq": 3, "state": "extracting"}},
        {"calculation": calc_id, "kind": "results", "body": {"step": 0, "data": {"energies": {"total": -465.1}}}},
        {"calculation": calc_id, "kind": "event", "body": {"seq": 4, "state": "succeeded"}},
    ]


def test_it_applies_every_report_in_order_and_answers_each(claimed, agent_client):
    response = agent_client.post(REPORTS, {"reports": _run(claimed.pk)}, format="json")
    assert response.status_code == 200, response.content
    answers = response.json()["answers"]
    assert [a["status"] for a in answers] == [200, 200, 200, 200, 201, 200]
    assert answers[0]["body"] == {"duplicate": False, "state": "running"} and answers[1]["body"] == {"accepted": 2}
    claimed.refresh_from_db()
    assert claimed.state == State.SUCCEEDED and claimed.agent_seq == 4
    assert list(LogLine.objects.filter(calculation=claimed).values_list("message", flat=True)) == ["SCF 1", "SCF 2"]
    assert Result.objects.get(calculation=claimed).data == {"energies": {"total": -465.1}}


def test_it_ignores_a_replayed_batch(claimed, agent_client):
    agent_client.post(REPORTS, {"reports": _run(claimed.pk)}, format="json")
    events = CalculationEvent.objects.count()
    answers = agent_client.post(REPORTS, {"reports": _run(claimed.pk)}, format="json").json()["answers"]
    assert all(a["body"].get("duplicate", True) for a in answers if a["status"] == 200)
    assert CalculationEvent.objects.count() == events and LogLine.objects.count() == 2


def test_a_refused_report_changes_nothing_and_leaves_the_others_applied(claimed, submit, agent_client,
                                                                        other_cluster):
    foreign = submit(name="elsewhere", cluster=other_cluster)
    reports = [
        {"calculation": claimed.pk, "kind": "event", "body": {"seq": 1, "state": "running"}},
        {"calculation": claimed.pk, "kind": "event", "body": {"seq": 2, "state": "succeeded"}},  # skips states
        {"calculation": claimed.pk, "kind": "logs", "body": {"lines": [{"message": ""}]}},  # no message
        {"calculation": foreign.pk, "kind": "event", "body": {"seq": 1, "state": "running"}},  # not ours
        {"calculation": claimed.pk, "kind": "event", "body": {"seq": 2, "state": "validating"}},
    ]
    answers = agent_client.post(REPORTS, {"reports": reports}, format="json").json()["answers"]
    assert [a["status"] for a in answers] == [200, 409, 400, 404, 200]
    assert "succeeded" in answers[1]["body"]["detail"] and "lines" in answers[2]["body"]["errors"]
    claimed.refresh_from_db()
    foreign.refresh_from_db()
    assert (claimed.state, claimed.agent_seq) == (State.VALIDATING, 2)
    assert foreign.state == State.QUEUED and not LogLine.objects.exists()


def test_it_commits_once_without_savepoints(transactional_db, claimed, agent_client):
    with CaptureQueriesContext(connection) as queries:
        agent_client.post(REPORTS, {"reports": _run(claimed.pk)}, format="json")
    statements = [q["sql"] for q in queries.captured_queries]
    assert statements.count("COMMIT") == 1
    # no savepoints (each costs two round trips): every kind refuses before it writes
    assert not any(sql.startswith("SAVEPOINT") for sql in statements)
    # the batch's four events inserted together, in the order they happened
    inserts = [sql for sql in statements if sql.startswith('INSERT INTO "calculations_calculationevent"')]
    assert len(inserts) == 1
    events = CalculationEvent.objects.filter(calculation=claimed, seq__isnull=False).order_by("pk")
    assert [(e.seq, e.from_state, e.to_state) for e in events] == [
        (1, "claimed", "running"), (2, "running", "validating"), (3, "validating", "extracting"),
        (4, "extracting", "succeeded")]


@pytest.mark.parametrize(("body", "field"), [
    ({"reports": []}, "reports"),
    ({"reports": [{"calculation": 1, "kind": "event", "body": {}}] * (MAX_REPORTS + 1)}, "reports"),
    ({"reports": [{"calculation": 1, "kind": "heartbeat", "body": {}}]}, "reports"),
    ({}, "reports"),
])
def test_it_refuses_a_malformed_batch_with_a_message(agent_client, body, field):
    response = agent_client.post(REPORTS, body, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]


def test_it_takes_only_a_cluster_key(claimed, alice):
    body = {"reports": _run(claimed.pk)}
    assert api_client_for(None).post(REPORTS, body, format="json").status_code == 401
    assert api_client_for(alice).post(REPORTS, body, format="json").status_code in (401, 403)
    claimed.refresh_from_db()
    assert claimed.state == State.CLAIMED


@pytest.fixture
def enqueued(monkeypatch):
    """The event ids of every notification message enqueued, message by message."""
    from calculations import tasks

    sent = []
    monkeypatch.setattr(tasks.notify_events, "delay", lambda ids: sent.append(list(ids)))
    monkeypatch.setattr(tasks.notify_event, "delay", lambda event_id: sent.append([event_id]))
    return sent


def test_it_enqueues_one_notification_message_for_the_batch(claimed, agent_client, enqueued):
    claim_events = set(CalculationEvent.objects.values_list("pk", flat=True))
    agent_client.post(REPORTS, {"reports": _run(claimed.pk)}, format="json")
    (ids,) = enqueued
    assert set(ids) == set(CalculationEvent.objects.values_list("pk", flat=True)) - claim_events
    assert len(ids) == 4  # running, validating, extracting, succeeded


def test_a_failed_batch_enqueues_nothing(claimed, enqueued):
    from django.db import transaction

    from calculations.services import notifications_batched, transition

    claimed.refresh_from_db()
    with pytest.raises(RuntimeError), notifications_batched(), transaction.atomic():
        transition(claimed, State.RUNNING, by_agent=True)
        raise RuntimeError("the request fails after the transition")
    claimed.refresh_from_db()
    assert enqueued == [] and claimed.state == State.CLAIMED


@pytest.mark.parametrize(("kind", "body"), [
    ("event", {"seq": 1, "state": "running"}),
    ("logs", {"lines": [{"seq": 1, "message": "late line"}]}),
    ("results", {"step": 0, "data": {"energies": {"total": -1.0}}}),
])
def test_it_refuses_a_report_of_an_attempt_that_is_over(claimed, agent_client, kind, body):
    Calculation.objects.filter(pk=claimed.pk).update(attempt=2)  # requeued or resumed meanwhile
    answers = agent_client.post(REPORTS, {"reports": [
        {"calculation": claimed.pk, "kind": kind, "body": {**body, "attempt": 1}},
        {"calculation": claimed.pk, "kind": kind, "body": {**body, "attempt": 2}}]}, format="json").json()["answers"]
    assert answers[0]["status"] == 409 and "Attempt 1" in answers[0]["body"]["detail"]
    assert answers[1]["status"] in (200, 201)
    route = {"event": "events", "logs": "logs", "results": "results"}[kind]
    single = agent_client.post(f"/api/agent/v1/calculations/{claimed.pk}/{route}/", {**body, "attempt": 1},
                               format="json")
    assert single.status_code == 409
    assert not LogLine.objects.filter(attempt=1).exists() and not Result.objects.filter(attempt=1).exists()
