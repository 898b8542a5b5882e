"""Figure 3: concurrent claimers over real HTTP against thousands of queued calculations.

Each claimer is a thread with its own keep-alive session and the cluster's key, claiming
one calculation per request (``{"max": 1, "wait": 0}``, the most contended form) until the
server answers an empty list. Every handed-out id is recorded: one seen twice is a bug."""

from __future__ import annotations

import threading
import time
from collections import Counter

from bench import env
from bench.stats import ms, percentile, summarise


def queue_calculations(cluster, n: int) -> None:
    """``n`` queued command calculations on ``cluster`` (bulk insert: the setup is not measured)."""
    from calculations.models import Calculation

    owner = env.admin_user()
    Calculation.objects.bulk_create(
        [Calculation(name=f"claim {i}", owner=owner, cluster=cluster, engine="command",
                     config={"program": "tiny", "options": {"i": i}}, inputs_hash=f"{i:064x}")
         for i in range(n)], batch_size=1000)


def claim_storm(server, key: str, claimers: int) -> tuple[list[int], list[float], int, float]:
    """Run the claimers to exhaustion; answers ids, latencies, errors and seconds."""
    ids: list[int] = []
    latencies: list[float] = []
    errors = Counter()
    lock = threading.Lock()
    url = server.url + "/api/agent/v1/claim/"
    start = threading.Barrier(claimers + 1)

    def claimer():
        session = env.agent_session(key)
        start.wait()
        deadline = time.monotonic() + 600  # a bound, whatever the server does
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                answer = session.post(url, json={"max": 1, "wait": 0}, timeout=60)
            except Exception as exc:  # counted, and the claimer goes on
                with lock:
                    errors[type(exc).__name__] += 1
                continue
            took = time.perf_counter() - t0
            if answer.status_code != 200:
                with lock:
                    errors[answer.status_code] += 1
                continue
            got = [c["id"] for c in answer.json()["calculations"]]
            with lock:
                ids.extend(got)
                latencies.append(took)
            if not got:
                return

    threads = [threading.Thread(target=claimer, daemon=True) for _ in range(claimers)]
    for thread in threads:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join(700)
    return ids, latencies, sum(errors.values()), time.perf_counter() - t0


def contention_once(ctx, label: str) -> dict:
    from calculations.models import Calculation

    n, claimers = ctx.profile.claim_n, 50
    cluster, key = env.cluster_with_key(f"claims-{label}", max_concurrent=10_000)
    queue_calculations(cluster, n)
    ids, latencies, errors, seconds = claim_storm(ctx.server, key, claimers)
    twice = sum(count - 1 for count in Counter(ids).values() if count > 1)
    claimed_in_db = Calculation.objects.filter(cluster=cluster, state="claimed").count()
    Calculation.objects.filter(cluster=cluster).update(state="cancelled")  # off the active set
    return {"queued": n, "claimers": claimers, "claimed": len(ids), "claimed_in_db": claimed_in_db,
            "claims_per_s": round(len(ids) / seconds, 1), "handed_out_twice": twice, "errors": errors,
            "p50_ms": ms(percentile(latencies, 50)), "p99_ms": ms(percentile(latencies, 99))}


def contention(ctx) -> dict:
    """Figure 3."""
    runs = [contention_once(ctx, f"{ctx.run_id}-{r}") for r in range(ctx.profile.repeats)]
    summary = summarise(runs)
    summary["handed_out_twice"] = max(r["handed_out_twice"] for r in runs)  # any double hand-out counts
    return {**summary, "runs": runs}
