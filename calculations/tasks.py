"""Celery tasks of the calculations app: short, idempotent, taking ids."""

from __future__ import annotations

import logging
from datetime import timedelta
from smtplib import SMTPException

from anymail.exceptions import AnymailAPIError
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from calculations import ingest, notifications
from calculations.models import CalculationEvent, LogLine

log = logging.getLogger(__name__)


@shared_task(autoretry_for=(SMTPException, AnymailAPIError, ConnectionError, TimeoutError),
             retry_backoff=True, retry_backoff_max=600, retry_jitter=True, max_retries=8)
def notify_event(event_id: int) -> int:
    """E-mail the owner (by their level) and the admins about one event, once."""
    with transaction.atomic():
        # of=self: PostgreSQL cannot lock the nullable side (actor) of the outer join
        event = (CalculationEvent.objects.select_for_update(of=("self",))
                 .select_related("calculation__owner", "actor")
                 .filter(pk=event_id, notified_at__isnull=True).first())
        if event is None:
            return 0  # gone, or already notified: a retry or a duplicate delivery
        sent = notifications.send_event(event)
        event.notified_at = timezone.now()
        event.save(update_fields=["notified_at"])
    return sent


@shared_task(autoretry_for=(SMTPException, AnymailAPIError, ConnectionError, TimeoutError),
             retry_backoff=True, retry_backoff_max=600, retry_jitter=True, max_retries=8)
def notify_events(event_ids: list[int]) -> int:
    """``notify_event`` for each of several events (one message for a batch of transitions,
    e.g. a claim). A retry skips the events already notified."""
    return sum(notify_event(event_id) for event_id in event_ids)


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
