"""Celery tasks of the calculations app: short, idempotent, taking ids."""

from __future__ import annotations

import logging
from datetime import timedelta
from smtplib import SMTPException

from anymail.exceptions import AnymailAPIError
from celery import shared_task
from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.utils import timezone

from calculations import ingest, notifications
from calculations.models import CalculationEvent, LogLine

log = logging.getLogger(__name__)


RETRIED = (SMTPException, AnymailAPIError, ConnectionError, TimeoutError)


@shared_task(autoretry_for=RETRIED, retry_backoff=True, retry_backoff_max=600, retry_jitter=True, max_retries=8)
def notify_event(event_id: int) -> int:
    """E-mail the owner (by their level) and the admins about one event, once."""
    return _notify([event_id])


@shared_task(autoretry_for=RETRIED, retry_backoff=True, retry_backoff_max=600, retry_jitter=True, max_retries=8)
def notify_events(event_ids: list[int]) -> int:
    """``notify_event`` for each of several events (one message for a batch of transitions,
    e.g. a claim or an agent's reports). A retry skips the events already notified."""
    return _notify(event_ids)


def _notify(event_ids: list[int]) -> int:
    """Mail the events not notified yet, each once: they stay locked while their mail goes
    (a duplicate delivery of the task waits, then finds them done), the admins are read
    once and one connection to the mail provider carries the batch. Each event is marked
    as its mail is sent, so when the provider fails half way the marks of those sent are
    committed before the error (which makes Celery retry) and a retry sends only the rest."""
    failure = None
    with transaction.atomic():
        # of=self: PostgreSQL cannot lock the nullable side (actor) of the outer join
        events = list(CalculationEvent.objects.select_for_update(of=("self",))
                      .select_related("calculation__owner", "calculation__cluster", "actor")
                      .filter(pk__in=event_ids, notified_at__isnull=True).order_by("pk"))
        if not events:
            return 0  # gone, or already notified: a retry or a duplicate delivery
        admins, sent, done = notifications.notified_admins(), 0, []
        try:
            with get_connection() as connection:
                for event in events:
                    sent += notifications.send_event(event, admins=admins, connection=connection)
                    done.append(event.pk)
        except Exception as exc:  # what was sent stays marked; Celery retries what it retries
            failure = exc
        CalculationEvent.objects.filter(pk__in=done).update(notified_at=timezone.now())
    if failure is not None:
        raise failure
    return sent


@shared_task
def expire_leases() -> int:
    """Lose (and requeue) calculations whose agent went silent past the lease."""
    return ingest.expire_leases()


@shared_task
def prune_logs(batch: int = 10_000) -> int:
    """Delete log lines older than LOG_RETENTION_DAYS, a bounded batch per run."""
    cutoff = timezone.now() - timedelta(days=settings.LOG_RETENTION_DAYS)
    ids = list(LogLine.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch])
    deleted, _ = LogLine.objects.filter(pk__in=ids).delete()
    return deleted
