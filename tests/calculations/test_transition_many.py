"""transition_many: several calculations moved at once by the same table, one event each,
one notification message for the batch; and the claim that uses it."""

import pytest
from django.core import mail
from django.db.models import F

from calculations import ingest, tasks
from calculations.models import Calculation, CalculationEvent
from calculations.services import IllegalTransition, StaleState, transition_many
from calculations.states import State


@pytest.fixture
def queued(submit):
    return [submit(name=f"c{n}") for n in range(3)]


@pytest.fixture
def enqueued(monkeypatch):
    """The event ids of every notification message enqueued."""
    sent = []
    monkeypatch.setattr(tasks.notify_events, "delay", lambda ids: sent.append(list(ids)))
    monkeypatch.setattr(tasks.notify_event, "delay", lambda event_id: sent.append([event_id]))
    return sent


def test_it_moves_them_all_with_one_event_each_and_one_message(queued, enqueued,
                                                               django_capture_on_commit_callbacks):
    Calculation.objects.filter(pk=queued[1].pk).update(start_step=2)
    queued[1].refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        events = transition_many(queued, State.CLAIMED, by_agent=True, reason="claimed", processed=True,
                                 current_step=F("start_step"))
    assert [c.state for c in Calculation.objects.filter(pk__in=[c.pk for c in queued])] == [State.CLAIMED] * 3
    assert [c.current_step for c in queued] == [0, 2, 0] and all(c.processed for c in queued)
    assert [(e.calculation_id, e.from_state, e.to_state, e.by_agent) for e in events] == [
        (c.pk, State.QUEUED, State.CLAIMED, True) for c in queued]
    assert enqueued == [[e.pk for e in events]]


def test_it_refuses_what_the_table_refuses_and_changes_nothing(queued):
    events = CalculationEvent.objects.count()
    with pytest.raises(IllegalTransition):
        transition_many(queued, State.SUCCEEDED)
    Calculation.objects.filter(pk=queued[0].pk).update(state=State.CANCELLED)
    queued[0].refresh_from_db()
    with pytest.raises(IllegalTransition, match="several states"):
        transition_many(queued, State.CLAIMED)
    assert CalculationEvent.objects.count() == events
    assert set(Calculation.objects.exclude(pk=queued[0].pk).values_list("state", flat=True)) == {State.QUEUED}


def test_it_changes_nothing_when_one_changed_meanwhile(queued):
    Calculation.objects.filter(pk=queued[2].pk).update(state=State.CANCELLED)  # behind the caller's back
    events = CalculationEvent.objects.count()
    with pytest.raises(StaleState):
        transition_many(queued, State.CLAIMED)
    assert list(Calculation.objects.filter(pk__in=[queued[0].pk, queued[1].pk])
                .values_list("state", flat=True)) == [State.QUEUED, State.QUEUED]
    assert CalculationEvent.objects.count() == events


def test_a_claim_of_several_sends_one_notification_message(queued, cluster, enqueued,
                                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        claimed = ingest.claim(cluster=cluster, max_count=5)
    assert [c.pk for c in claimed] == [c.pk for c in queued]  # oldest first
    (ids,) = enqueued
    assert sorted(CalculationEvent.objects.filter(pk__in=ids).values_list("calculation_id", flat=True)) == \
        sorted(c.pk for c in queued)


def test_notify_events_mails_each_event_once(submit, alice):
    alice.notify_level = "INFO"
    alice.save()
    calcs = [submit(name=f"m{n}") for n in range(2)]
    events = transition_many(calcs, State.CANCELLED, reason="not needed")
    mail.outbox.clear()
    assert tasks.notify_events([e.pk for e in events]) >= 2
    sent = len(mail.outbox)
    assert tasks.notify_events([e.pk for e in events]) == 0 and len(mail.outbox) == sent  # a retry
    assert {m.to[0] for m in mail.outbox} >= {alice.email}


def test_a_broker_outage_never_breaks_a_claim(queued, cluster, monkeypatch, django_capture_on_commit_callbacks):
    def down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.notify_events, "delay", down)
    with django_capture_on_commit_callbacks(execute=True):
        assert len(ingest.claim(cluster=cluster, max_count=5)) == 3
    assert Calculation.objects.filter(state=State.CLAIMED).count() == 3
