"""Invocations: the inference proxy's forwarding of a body to a running model, and the
Prediction that records each one (for audit, and for comparing with the DFT result later).

The API (``POST /api/models/{id}/invocations/``) and the model page call :func:`invoke`;
the model's lifecycle is in :mod:`mlmodels.services`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils import timezone

from mlmodels import docker
from mlmodels.models import MLModel, Prediction
from mlmodels.services import _check_user, _fresh, check_ready, supervise_model
from siestaflow.lib.db import insert_without_waiting_for_disk, next_id

log = logging.getLogger(__name__)
State = MLModel.State

STORE_MAX_BYTES = 256 * 1024  # larger inputs and outputs are kept as a summary in predictions


class NotReady(Exception):
    """The model cannot take invocations now (answered 503, with Retry-After when known)."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLarge(Exception):
    """The body is over MODEL_MAX_PAYLOAD_BYTES (answered 413)."""


class InvocationFailed(Exception):
    """The model did not answer 2xx: ``status`` is what siestaflow answers (400 for the model's
    4xx, 502 otherwise), the message carries the model's own; the prediction records it."""

    def __init__(self, status: int, message: str, prediction: Prediction, model_status: int | None = None):
        super().__init__(message)
        self.status, self.prediction, self.model_status = status, prediction, model_status


@dataclass(frozen=True)
class Invocation:
    """The model's 2xx answer and its prediction: saved, or (``recorded`` false) built under
    its id for the caller to :func:`record` once the answer is out."""

    reply: docker.Reply
    prediction: Prediction
    recorded: bool = True


def _not_ready(model: MLModel) -> NotReady:
    if model.state == State.STARTING:
        return NotReady(f"Model {model.name} is starting: try again in a moment.", retry_after=1)
    if model.state == State.UNHEALTHY:
        wait = max(1, int(((model.next_restart_at or timezone.now()) - timezone.now()).total_seconds()) + 1)
        return NotReady(f"Model {model.name} is unhealthy and being restarted: try again later.", retry_after=wait)
    if model.state == State.CRASH_LOOP:
        return NotReady(f"Model {model.name} is in a crash loop: an admin has to look at it. {model.last_error}")
    if model.state == State.FAILED:
        return NotReady(f"Model {model.name} failed: {model.last_error} Start it again when fixed.")
    return NotReady(f"Model {model.name} is stopped: start it first.")


def _stored(data: bytes, content_type: str) -> Any:
    """What a prediction keeps of a body: its JSON, else its text; a summary when large."""
    if len(data) > STORE_MAX_BYTES:
        return {"truncated": True, "bytes": len(data), "head": data[:1024].decode("utf-8", "replace")}
    text = data.decode("utf-8", "replace")
    if "json" in content_type.lower():
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def _prediction(model: MLModel, actor, body: bytes, content_type: str, status: str, *,
                reply: docker.Reply | None = None, error: str = "", calculation=None,
                prediction_id: int | None = None) -> Prediction:
    return Prediction(
        pk=prediction_id,
        model=model, model_name=model.name, model_version=model.version, image=model.image,
        user=actor if getattr(actor, "pk", None) else None, content_type=content_type[:255],
        calculation=calculation,
        input=_stored(body, content_type), output=_stored(reply.body, reply.content_type) if reply else None,
        status=status, http_status=reply.status if reply else None, error=error,
        latency_ms=reply.latency_ms if reply else None)


def _saved(prediction: Prediction) -> Prediction:
    return insert_without_waiting_for_disk(prediction, carrier="status")  # the answer should not wait for the disk


def record(prediction: Prediction) -> None:
    """Save the prediction of an answer already given (``Invocation.recorded`` false). The
    answer is out whatever happens here: a failure is logged, and only this record is lost."""
    try:
        _saved(prediction)
    except DatabaseError:
        log.exception("prediction %s of model %s answered but not recorded", prediction.pk, prediction.model_name)


INVOCATION_FIELDS = ("id", "name", "version", "image", "state", "address", "next_restart_at", "last_error")
"""What :func:`invoke` reads of a model (the proxy loads nothing else)."""


def for_invocation(models, *, caller_id: int | None = None):
    """``models`` reading only what :func:`invoke` needs, nothing joined. On PostgreSQL each
    also brings, in the same statement, ``prediction_id``: an id taken from the predictions'
    sequence for its prediction, so the proxy can record it after answering. With
    ``caller_id``, also ``caller_active``: whether that user exists and is not blocked (None:
    no such user), so the proxy checks a JWT's user in the same statement too."""
    models = models.only(*INVOCATION_FIELDS)
    if connection.vendor == "postgresql":
        models = models.annotate(prediction_id=next_id(Prediction))
    if caller_id is not None:
        # RawSQL: as a Subquery of a User queryset, the ORM spent ~0.5 ms more building it each call
        caller_active = RawSQL('SELECT "is_active" FROM "accounts_user" WHERE "id" = %s', [caller_id],
                               output_field=BooleanField())
        models = models.annotate(caller_active=caller_active)
    return models


def invoke(*, actor, model: MLModel, body: bytes, content_type: str, accept: str = "",
           fresh: bool = False, calculation=None, prediction_id: int | None = None) -> Invocation:
    """Forward ``body`` with its content type to the model's ``/invocations`` and record a
    Prediction. Not running: NotReady (a starting model is checked at once). Over
    MODEL_MAX_PAYLOAD_BYTES: PayloadTooLarge. The model's 4xx: InvocationFailed(400) with
    its message; its 5xx, no answer within MODEL_INVOKE_TIMEOUT, unreachable, or an answer
    over the limit: InvocationFailed(502). ``fresh``: the caller has just read ``model`` (it is
    not read again). ``calculation``: the one whose DFT result this predicts (recorded, and
    compared by :func:`dft_comparison` once the result is there). ``prediction_id``: the id to
    record the prediction under (from :func:`for_invocation`); a 2xx answer's prediction is
    then built but not saved (``recorded`` false), for the caller to :func:`record` once its
    own answer is out. Failures are recorded at once."""
    _check_user(actor)
    limit = settings.MODEL_MAX_PAYLOAD_BYTES
    if len(body) > limit:
        raise PayloadTooLarge(f"The body is {len(body)} bytes; models take at most {limit}.")
    if not fresh:
        model = _fresh(model)
    if model.state == State.STARTING:
        model = check_ready(model_id=model.pk) or model
    if model.state != State.RUNNING:
        raise _not_ready(model)
    prediction_of = partial(_prediction, model, actor, body, content_type, calculation=calculation,
                            prediction_id=prediction_id)
    try:
        reply = docker.invoke(model.address, body, content_type=content_type, accept=accept,
                              timeout=settings.MODEL_INVOKE_TIMEOUT, max_bytes=limit)
    except docker.ContainerHTTPError as exc:
        prediction = _saved(prediction_of(Prediction.Status.ERROR, error=str(exc)))
        if isinstance(exc, docker.ContainerUnreachable):
            _supervise_now(model)
        raise InvocationFailed(502, f"Model {model.name} failed: {exc}", prediction) from exc
    if reply.ok:
        prediction = prediction_of(Prediction.Status.OK, reply=reply)
        if prediction_id is not None:
            return Invocation(reply, prediction, recorded=False)
        return Invocation(reply, _saved(prediction))
    message = reply.message()
    client_error = 400 <= reply.status < 500
    status = Prediction.Status.REJECTED if client_error else Prediction.Status.ERROR
    prediction = _saved(prediction_of(status, reply=reply, error=message))
    if client_error:
        raise InvocationFailed(400, f"Model {model.name} rejected the input (HTTP {reply.status}): {message}",
                               prediction, reply.status)
    raise InvocationFailed(502, f"Model {model.name} failed (HTTP {reply.status}): {message}", prediction,
                           reply.status)


def _supervise_now(model: MLModel) -> None:
    """Its server stopped accepting connections: let the supervisor act now, not at its next tick."""
    try:
        supervise_model(model_id=model.pk)
    except docker.DockerError as exc:
        log.warning("supervising model %s after a failed invocation: %s", model.pk, exc)
