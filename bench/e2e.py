"""Figures 1 and 2: calculations end to end through one agent, and the pick-up latency of
an idle agent. Calculations are created through the user API; every timestamp is read
from the database (the calculation's ``created_at`` and its events' ``created_at``)."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

from bench import env
from bench.stats import ms, percentile, summarise

# How the end-to-end agent is configured (reported with the figure): a tick every
# POLL seconds and up to CONCURRENT calculations at once.
E2E_AGENT = {"poll_interval": 0.2, "max_concurrent": 16, "claim_wait": 20}
CREATORS = 4  # threads creating calculations through the API


def create(session, server, cluster_id: int, name: str) -> int:
    body = {"name": name, "cluster": cluster_id, "engine": "command",
            "config": {"program": "tiny", "options": {}}}
    answer = session.post(server.url + "/api/calculations/", json=body, timeout=60)
    if answer.status_code != 201:
        raise RuntimeError(f"creating a calculation answered {answer.status_code}: {answer.text[:300]}")
    return answer.json()["id"]


def _event_delays(calc_ids: list[int], state: str) -> dict[int, float]:
    """Seconds from each calculation's creation to its first event into ``state``."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, EXTRACT(EPOCH FROM MIN(e.created_at) - c.created_at) FROM calculations_calculation c "
            "JOIN calculations_calculationevent e ON e.calculation_id = c.id AND e.to_state = %s "
            "WHERE c.id = ANY(%s) GROUP BY c.id, c.created_at", [state, calc_ids])
        return {row[0]: float(row[1]) for row in cursor.fetchall()}


def _states(calc_ids: list[int]) -> dict[str, int]:
    from django.db.models import Count

    from calculations.models import Calculation

    rows = Calculation.objects.filter(pk__in=calc_ids).values("state").annotate(n=Count("id"))
    return {row["state"]: row["n"] for row in rows}


def _done(calc_ids: list[int]) -> int:
    from calculations.states import TERMINAL

    return sum(n for state, n in _states(calc_ids).items() if state in TERMINAL)


def _span_seconds(calc_ids: list[int]) -> float | None:
    """From the first creation to the last ``succeeded`` event."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXTRACT(EPOCH FROM MAX(e.created_at) - (SELECT MIN(created_at) FROM calculations_calculation "
            "WHERE id = ANY(%s))) FROM calculations_calculationevent e WHERE e.calculation_id = ANY(%s) "
            "AND e.to_state = 'succeeded'", [calc_ids, calc_ids])
        value = cursor.fetchone()[0]
    return None if value is None else float(value)


def _creation_seconds(calc_ids: list[int]) -> float | None:
    """From the first creation to the last."""
    from django.db.models import Max, Min

    from calculations.models import Calculation

    span = Calculation.objects.filter(pk__in=calc_ids).aggregate(first=Min("created_at"), last=Max("created_at"))
    return (span["last"] - span["first"]).total_seconds() if span["first"] else None


def _online_agent(server, name: str, **options):
    from clusters.models import Cluster

    cluster, key = env.cluster_with_key(name, max_concurrent=max(4, options.get("max_concurrent", 1)),
                                        heartbeat_interval=10)
    agent = env.start_agent(server, key, **options)
    if not env.wait_for(lambda: Cluster.objects.get(pk=cluster.pk).last_heartbeat_at is not None, 60):
        agent.stop()
        raise RuntimeError(f"the agent did not heartbeat within 60 s: see {agent.folder / 'agent.log'}")
    return cluster, agent


def end_to_end_once(server, session, n: int, timeout: float, label: str) -> dict:
    cluster, agent = _online_agent(server, f"e2e-{label}", **E2E_AGENT)
    try:
        time.sleep(1)  # the agent is idle, long-polling
        with ThreadPoolExecutor(CREATORS) as pool:
            ids = list(pool.map(lambda i: create(session, server, cluster.pk, f"tiny {label}-{i}"), range(n)))
        env.wait_for(lambda: _done(ids) >= n, timeout, interval=0.5)
    finally:
        agent.stop()
    states = _states(ids)
    delays = list(_event_delays(ids, "succeeded").values())
    span, creation = _span_seconds(ids), _creation_seconds(ids)
    succeeded = states.get("succeeded", 0)
    return {"calculations": n, "succeeded": succeeded, "not_finished": n - _done(ids),
            "per_minute": round(succeeded / span * 60, 1) if span else None,
            "created_per_minute": round(n / creation * 60, 1) if creation else None,
            "p50_ms": ms(percentile(delays, 50)), "p95_ms": ms(percentile(delays, 95))}


def end_to_end(ctx) -> dict:
    """Figure 1."""
    session = env.jwt_session(ctx.server)
    runs = [end_to_end_once(ctx.server, session, ctx.profile.e2e_n, ctx.profile.e2e_timeout, f"{ctx.run_id}-{r}")
            for r in range(ctx.profile.repeats)]
    return {**summarise(runs), "agent": E2E_AGENT, "runs": runs}


def pickup(ctx) -> dict:
    """Figure 2: an idle agent with the default poll interval and claim wait."""
    from clusters.models import Cluster

    session = env.jwt_session(ctx.server)
    defaults = {"poll_interval": 2.0, "claim_wait": 20, "max_concurrent": 1}
    cluster, agent = _online_agent(ctx.server, f"pickup-{ctx.run_id}", **defaults)
    ids = []
    try:
        time.sleep(1)
        for i in range(ctx.profile.pickup_samples):
            # Past the agent's sleep after its last run (it is long-polling again), then at a
            # random moment: the pick-up of an idle agent, not of one that just finished.
            time.sleep(defaults["poll_interval"] + 0.5 + random.uniform(0, 2))
            calc_id = create(session, ctx.server, cluster.pk, f"pickup {i}")
            ids.append(calc_id)
            env.wait_for(lambda c=calc_id: _done([c]) == 1, 60, interval=0.05)
    finally:
        agent.stop()
    claimed = list(_event_delays(ids, "claimed").values())
    running = list(_event_delays(ids, "running").values())
    Cluster.objects.filter(pk=cluster.pk).update(enabled=False)
    return {"samples": len(ids), "claim_p50_ms": ms(percentile(claimed, 50)),
            "running_p50_ms": ms(percentile(running, 50)), "running_p95_ms": ms(percentile(running, 95)),
            "agent": defaults}
