"""How fast this machine is at what the figures are made of, measured at the start of a run,
so that runs on different machines (or hours) can be compared: the same code has given
figures twice as slow on one machine of this kind as on another.

- ``orm_compile_ms``: Django building the SQL of 1,000 small ORM queries (no database), the
  Python work that most of the web app's time per request goes to;
- ``pg_round_trip_ms``: one ``SELECT 1`` over loopback (p50 of 500), the price of a statement.

Each is the median of 5 measurements."""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _orm_compile_ms() -> float:
    from django.db import connection

    from calculations.models import Calculation

    start = time.perf_counter()
    for i in range(1000):
        query = Calculation.objects.filter(cluster_id=i, state="queued").order_by("-created_at").only("id").query
        query.get_compiler(connection=connection).as_sql()
    return (time.perf_counter() - start) * 1000


def _pg_round_trip_ms() -> float:
    from django.db import connection

    times = []
    with connection.cursor() as cursor:
        for _ in range(500):
            start = time.perf_counter()
            cursor.execute("SELECT 1")
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def speed() -> dict:
    """The machine's figures (Django must be set up, on the bench database)."""
    _orm_compile_ms()  # warm-up
    return {"cpu": cpu_model(),
            "orm_compile_ms": round(statistics.median(_orm_compile_ms() for _ in range(5)), 1),
            "pg_round_trip_ms": round(statistics.median(_pg_round_trip_ms() for _ in range(5)), 3)}


def describe(figures: dict) -> str:
    return (f"{figures['cpu']}: 1,000 ORM queries compiled in {figures['orm_compile_ms']} ms, "
            f"a PostgreSQL round trip {figures['pg_round_trip_ms']} ms")
