"""Every state event is e-mailed, once, to the owner by their level and to the admins."""

from smtplib import SMTPException

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calculations import notifications, services, tasks
from calculations.services import transition
from calculations.states import State
from tests.factories import UserFactory
from tests.workers import celery_worker, wait_for


def run_to(calc, *states):
    for state in states:
        transition(calc, state)
    return calc.events.order_by("-id").first()


def test_it_mails_an_info_owner_every_state_change_and_the_report(submit, alice, root):
    event = run_to(submit(), State.CLAIMED, State.RUNNING, State.VALIDATING, State.EXTRACTING, State.SUCCEEDED)
    assert tasks.notify_event(event.pk) == 2
    to_alice = next(m for m in mail.outbox if m.to == [alice.email])
    assert "Report ready" in to_alice.subject
    assert f"/calculations/{event.calculation_id}/report/" in to_alice.body
    assert {m.to[0] for m in mail.outbox} == {alice.email, root.email}


def test_it_mails_an_error_owner_only_failures(submit, alice):
    alice.notify_level = "ERROR"
    alice.save()
    calc = submit()
    running = run_to(calc, State.CLAIMED, State.RUNNING)
    tasks.notify_event(running.pk)
    assert alice.email not in [m.to[0] for m in mail.outbox]
    failed = run_to(calc, State.FAILED)
    tasks.notify_event(failed.pk)
    assert [m.to[0] for m in mail.outbox].count(alice.email) == 1


def test_it_mails_nobody_whose_level_is_off(submit, alice):
    alice.notify_level = "OFF"
    alice.save()
    event = run_to(submit(), State.CLAIMED)
    assert tasks.notify_event(event.pk) == 0


def test_it_mails_each_event_once_even_when_the_task_runs_twice(submit, alice):
    event = run_to(submit(), State.CLAIMED)
    tasks.notify_event(event.pk)
    tasks.notify_event(event.pk)
    assert len(mail.outbox) == 1


def test_it_retries_later_when_the_mail_provider_fails(submit, alice, monkeypatch):
    event = run_to(submit(), State.CLAIMED)

    def broken(*args, **kwargs):
        raise SMTPException("provider down")

    monkeypatch.setattr("calculations.notifications.send_templated", broken)
    with pytest.raises(SMTPException):
        tasks.notify_event.run(event.pk)
    event.refresh_from_db()
    assert event.notified_at is None  # a retry will send it


def test_it_never_breaks_the_request_when_the_broker_is_down(submit, bob, monkeypatch,
                                                               django_capture_on_commit_callbacks):
    def down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.notify_event, "delay", down)
    calc = submit()
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel(actor=bob, calc=calc)
    calc.refresh_from_db()
    assert calc.state == State.CANCELLED


def test_it_tells_the_owner_of_a_rejection_at_error_level(submit, alice, mod, settings):
    settings.REQUIRE_APPROVAL = True
    alice.notify_level = "ERROR"
    alice.save()
    calc = submit()
    event = services.reject(actor=mod, calc=calc, reason="wrong basis")
    tasks.notify_event(event.pk)
    assert "wrong basis" in mail.outbox[0].body


@pytest.mark.django_db(transaction=True)
def test_it_delivers_through_a_real_worker(tmp_path):
    from clusters.models import Cluster
    from tests.factories import ClusterFactory

    owner = UserFactory(username="olga")
    cluster: Cluster = ClusterFactory(name="w")
    from calculations.models import Calculation

    calc = Calculation.objects.create(name="real", owner=owner, cluster=cluster, engine="command", inputs_hash="0")
    event = transition(calc, State.CLAIMED)
    with celery_worker(tmp_path) as (producer, queue):
        producer.send_task("calculations.tasks.notify_event", args=[event.pk], queue=queue)
        sent = wait_for(lambda: list((tmp_path / "mail").glob("*.log")) if (tmp_path / "mail").exists() else [])
    assert sent, celery_worker.last_output
    assert "real is claimed" in sent[0].read_text()


def test_a_batch_sends_each_event_once_across_a_provider_failure_half_way(submit, alice, monkeypatch):
    events = [run_to(submit(name=f"calc {i}"), State.CLAIMED) for i in range(3)]
    ids = [e.pk for e in events]
    real, calls = notifications.send_templated, []

    def flaky(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise SMTPException("provider down")
        return real(*args, **kwargs)

    monkeypatch.setattr("calculations.notifications.send_templated", flaky)
    with pytest.raises(SMTPException):
        tasks.notify_events.run(ids)
    assert len(mail.outbox) == 1  # the first went; its mark was committed before the error
    assert tasks.notify_events.run(ids) == 2  # the retry sends the other two only
    assert sorted(m.subject for m in mail.outbox) == sorted({m.subject for m in mail.outbox})
    assert len(mail.outbox) == 3


def test_a_batch_costs_the_same_queries_for_3_events_as_for_30(submit, alice, root):
    def queries(n: int) -> int:
        ids = [run_to(submit(name=f"calc {n}-{i}"), State.CLAIMED).pk for i in range(n)]
        with CaptureQueriesContext(connection) as captured:
            assert tasks.notify_events.run(ids) == 2 * n  # alice and root
        return len(captured)

    assert queries(3) == queries(30)
