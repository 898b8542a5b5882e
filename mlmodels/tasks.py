"""Celery tasks of the ML models: short, idempotent, taking ids. None of them sleeps: a
model that is not ready yet is checked again by a new task with a countdown."""

from __future__ import annotations

import logging
from smtplib import SMTPException

from anymail.exceptions import AnymailAPIError
from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from mlmodels import services

log = logging.getLogger(__name__)

READY_POLL_SECONDS = 1.0


@shared_task
def supervise() -> dict[str, int]:
    """One beat tick (every MODEL_PING_INTERVAL): ping each starting, running and unhealthy
    model, move its state, restart unhealthy ones when their backoff is over, detect crash
    loops. Skipped while the previous tick still runs."""
    lock = f"mlmodels:supervise:{services.owner_label()}"
    if not cache.add(lock, 1, max(60, settings.MODEL_PING_INTERVAL * 4)):
        log.info("the previous supervision tick still runs: skipped")
        return {}
    try:
        return services.supervise_all()
    finally:
        cache.delete(lock)


@shared_task
def await_ready(model_id: int) -> str | None:
    """The readiness check of a starting model, repeated every second (by a new task) until it
    is running, failed, or no longer starting."""
    model = services.check_ready(model_id=model_id)
    if model is not None and model.state == model.State.STARTING:
        await_ready.apply_async((model_id,), countdown=READY_POLL_SECONDS)
    return model.state if model is not None else None


@shared_task(autoretry_for=(SMTPException, AnymailAPIError, ConnectionError, TimeoutError),
             retry_backoff=True, retry_backoff_max=600, retry_jitter=True, max_retries=8)
def mail_crash_loop(model_id: int) -> int:
    """E-mail the admins that a model is in a crash loop, once."""
    return services.mail_crash_loop(model_id=model_id)
