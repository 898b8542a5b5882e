"""Graceful stop: SIGTERM and SIGINT set a :class:`threading.Event` the loop waits on.

The loop finishes its current tick, flushes the outbox and returns. Running jobs are not
touched: they live in their own sessions (or in the batch system) and the next agent
re-attaches to them.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
Handlers = dict[int, Any]


def install(stop: threading.Event | None = None, signals: Iterable[int] = SIGNALS) -> tuple[threading.Event, Handlers]:
    """Make ``signals`` set ``stop`` (created if not given); return it and the previous handlers.

    Must be called from the main thread (a Python rule for signal handlers).
    """
    stop = stop or threading.Event()
    previous = {sig: signal.signal(sig, _handler(stop)) for sig in signals}
    return stop, previous


def restore(previous: Handlers) -> None:
    """Put back the handlers :func:`install` replaced."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _handler(stop: threading.Event) -> Callable[[int, Any], None]:
    def handle(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("%s again: already stopping", name)
        else:
            log.info("%s received: stopping after the current tick (jobs keep running)", name)
        stop.set()

    return handle
