"""Figure 6: pages at scale. Calculations (with their events and results) and heartbeat
points are generated with set-based SQL (``INSERT ... SELECT generate_series``), the hour
and minute rollups computed from the points the way the downsampling task would. Then:

- query counts of each page at 100 calculations and again at the full size, counted
  in this process with ``CaptureQueriesContext`` against the same database;
- p50/p95 latency of each page over real HTTP (gunicorn, a signed-in session cookie).

A page whose route does not exist yet answers 404 and is reported as such."""

from __future__ import annotations

import time

from bench import env
from bench.stats import ms, percentile

PAGE_CLUSTERS = 20

CALC_SQL = """
INSERT INTO calculations_calculation (
  name, description, owner_id, molecule_id, cluster_id, engine, config, structure, analyses, chain, priority,
  approval, approval_reason, approved_by_id, state, processed, cancel_requested, attempt, start_step,
  current_step, agent_seq, lease_expires_at, lost_count, progress, failure_class, failure_reason, inputs_hash,
  duplicate_of_id, created_at, updated_at, started_at, finished_at)
SELECT 'bulk ' || i, 'bench-bulk', %(owner)s, NULL,
  (%(clusters)s::bigint[])[1 + mod(i, %(nclusters)s::bigint)], 'command',
  '{"program": "tiny", "options": {}}'::jsonb, NULL, '["energy_summary"]'::jsonb, NULL, 0, 'not_required', '', NULL,
  s.state, s.state <> 'queued', false, 1, 0, 0, CASE WHEN s.state = 'queued' THEN 0 ELSE 4 END, NULL, 0,
  '{"step": 0, "steps": 1}'::jsonb, CASE WHEN s.state = 'failed' THEN 'aborted' ELSE '' END,
  CASE WHEN s.state = 'failed' THEN 'tiny exited with code 1' ELSE '' END, md5(i::text) || md5((-i)::text), NULL,
  t.created, t.created + interval '10 seconds',
  CASE WHEN s.state = 'queued' THEN NULL ELSE t.created + interval '2 seconds' END,
  CASE WHEN s.state = 'queued' THEN NULL ELSE t.created + interval '10 seconds' END
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i,
  LATERAL (SELECT CASE WHEN mod(i, 50) = 1 THEN 'queued' WHEN mod(i, 10) = 0 THEN 'failed'
                       ELSE 'succeeded' END AS state) s,
  LATERAL (SELECT now() - interval '1 hour' - i * interval '25 seconds' AS created) t
"""

EVENT_SQL = """
INSERT INTO calculations_calculationevent (calculation_id, attempt, seq, from_state, to_state, step, actor_id,
  by_agent, reason, failure_class, data, notified_at, created_at)
SELECT c.id, 1, e.seq, e.from_state, CASE WHEN e.to_state = 'succeeded' THEN c.state ELSE e.to_state END,
  0, NULL, e.seq IS NOT NULL, e.reason, '', '{}'::jsonb, NULL,
  c.created_at + e.delay
FROM calculations_calculation c
CROSS JOIN (VALUES (NULL::int, 'queued', 'queued', 'submitted', interval '0 s'),
                   (NULL, 'queued', 'claimed', 'claimed by the agent', interval '1 s'),
                   (1, 'claimed', 'running', '', interval '2 s'),
                   (2, 'running', 'succeeded', '', interval '10 s')) AS e(seq, from_state, to_state, reason, delay)
WHERE c.id > %(after)s AND c.description = 'bench-bulk'
  AND (c.state <> 'queued' OR e.seq IS NULL AND e.to_state = 'queued')
"""

RESULT_SQL = """
INSERT INTO calculations_result (calculation_id, attempt, step, key, data, created_at, updated_at)
SELECT id, 1, 0, 'extracted', jsonb_build_object('energy', -1.5 - id %% 7, 'argv', jsonb_build_array(id::text)),
  finished_at, finished_at
FROM calculations_calculation WHERE id > %(after)s AND description = 'bench-bulk' AND state = 'succeeded'
"""

HEARTBEAT_SQL = """
INSERT INTO clusters_heartbeat (cluster_id, time, cpu_percent, memory_percent, memory_used, memory_total,
  disk_free, load_1, running)
SELECT c, now() - i * interval '10 seconds', 50 + 40 * sin(i / 360.0), 30 + mod(i, 40),
  4000000000 + mod(i, 1000) * 1000000, 16000000000, 500000000000 - i * 1000, 1.0 + mod(i, 8) / 4.0, mod(i, 5)
FROM unnest(%(clusters)s::bigint[]) AS c, generate_series(0, %(points)s::bigint - 1) AS i
"""

ROLLUP_SQL = """
INSERT INTO clusters_heartbeatrollup (cluster_id, resolution, bucket, cpu_percent, memory_percent, memory_used,
  disk_free, load_1, running, samples)
SELECT cluster_id, %(resolution)s, date_trunc(%(unit)s, time), avg(cpu_percent), avg(memory_percent),
  avg(memory_used), avg(disk_free), avg(load_1), avg(running), count(*)
FROM clusters_heartbeat WHERE cluster_id = ANY(%(clusters)s::bigint[])
  AND time < date_trunc(%(unit)s, now() - interval '30 seconds')
GROUP BY cluster_id, date_trunc(%(unit)s, time)
"""


def _execute(sql: str, params: dict) -> int:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def generate_calculations(owner_id: int, cluster_ids: list[int], lo: int, hi: int) -> None:
    """Calculations ``bulk lo..hi`` with their events and results."""
    from calculations.models import Calculation

    after = Calculation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    _execute(CALC_SQL, {"owner": owner_id, "clusters": cluster_ids, "nclusters": len(cluster_ids), "lo": lo, "hi": hi})
    _execute(EVENT_SQL, {"after": after})
    _execute(RESULT_SQL, {"after": after})


def generate_heartbeats(cluster_ids: list[int], total: int) -> None:
    points = total // len(cluster_ids)
    _execute(HEARTBEAT_SQL, {"clusters": cluster_ids, "points": points})
    for resolution, unit in (("minute", "minute"), ("hour", "hour")):
        _execute(ROLLUP_SQL, {"clusters": cluster_ids, "resolution": resolution, "unit": unit})
    env.vacuum()


def page_urls(calc_id: int, cluster_id: int) -> dict[str, str]:
    return {
        "dashboard": "/",
        "calculation_list": "/calculations/",
        "calculation_detail": f"/calculations/{calc_id}/",
        "cluster_page": f"/clusters/{cluster_id}/",
        "cluster_graph_month": f"/api/clusters/{cluster_id}/resources/?window=month",
        "api_calculation_list": "/api/calculations/",
        "api_calculation_detail": f"/api/calculations/{calc_id}/",
    }


def count_queries(urls: dict[str, str]) -> dict[str, object]:
    """Queries per page, in this process (a 404 or an error is reported instead)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(env.admin_user())
    counts: dict[str, object] = {}
    for name, url in urls.items():
        try:
            with CaptureQueriesContext(connection) as queries:
                answer = client.get(url)
        except Exception as exc:  # a page under construction: say so, go on
            counts[name] = f"error: {type(exc).__name__}: {str(exc)[:120]}"
            continue
        counts[name] = len(queries) if answer.status_code == 200 else f"n/a ({answer.status_code})"
    return counts


def latencies(server, urls: dict[str, str], samples: int) -> dict[str, dict]:
    session = env.page_session(server)
    out = {}
    for name, url in urls.items():
        status = session.get(server.url + url, timeout=120).status_code
        if status != 200:
            out[name] = {"status": f"n/a ({status})"}
            continue
        session.get(server.url + url, timeout=120)  # warm-up
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            session.get(server.url + url, timeout=120)
            times.append(time.perf_counter() - t0)
        out[name] = {"p50_ms": ms(percentile(times, 50)), "p95_ms": ms(percentile(times, 95)), "samples": samples}
    return out


def pages(ctx) -> dict:
    """Figure 6."""
    from clusters.models import Cluster

    profile = ctx.profile
    created = Cluster.objects.bulk_create([Cluster(name=f"page-{ctx.run_id}-{i:02d}") for i in range(PAGE_CLUSTERS)])
    cluster_ids = [c.pk for c in created]
    owner = env.admin_user().pk
    timings = {}
    t0 = time.perf_counter()
    generate_heartbeats(cluster_ids, profile.page_heartbeats)  # first: the graphs read the same rows twice
    timings["heartbeats_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    generate_calculations(owner, cluster_ids, 1, 100)
    from calculations.models import Calculation

    calc_id = Calculation.objects.filter(description="bench-bulk", state="succeeded").order_by("-pk")[0].pk
    urls = page_urls(calc_id, cluster_ids[0])
    small = count_queries(urls)
    generate_calculations(owner, cluster_ids, 101, profile.page_calcs)
    env.vacuum()
    timings["calculations_s"] = round(time.perf_counter() - t0, 1)
    large = count_queries(urls)
    http = latencies(ctx.server, urls, profile.page_samples)
    table = {name: {**http[name], "queries_at_100": small[name], f"queries_at_{profile.page_calcs}": large[name]}
             for name in urls}
    return {"calculations": profile.page_calcs, "heartbeat_points": profile.page_heartbeats,
            "generation": timings, "pages": table}
