"""Figure 4: heartbeats of thousands of simulated clusters at a fixed rate.

An open-loop load: request ``i`` is due at ``start + i / rate`` whatever the earlier answers
did, sent by a pool of threads (keep-alive sessions), the clusters taken in turn. Latency
is from sending to the full answer; ``lag_p99_ms`` says how late the client itself sent
(when it is large, the figure is limited by the load generator on these 2 cores)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter

from bench.stats import ms, percentile, summarise

SENDERS = 96
GRACE = 2.0  # seconds after the window in which late requests are still sent

PAYLOAD = {"agent_version": "0.1.0", "cpu_percent": 12.5, "memory_percent": 40.1, "memory_used": 1234567,
           "memory_total": 9999999, "disk_free": 123456789, "load": [0.5, 0.4, 0.3], "running": [],
           "engines": ["command", "siesta"], "analyses": ["energy_summary", "scf_convergence"]}


def simulated_clusters(n: int, label: str) -> list[str]:
    """``n`` clusters with one key each, inserted in bulk; answers the keys' texts."""
    from clusters.models import ApiKey, Cluster, hash_key

    clusters = Cluster.objects.bulk_create(
        [Cluster(name=f"sim-{label}-{i:05d}", heartbeat_interval=10) for i in range(n)], batch_size=1000)
    texts, keys = [], []
    for cluster in clusters:
        prefix = secrets.token_hex(6)
        text = f"{ApiKey.PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
        texts.append(text)
        keys.append(ApiKey(cluster=cluster, name="sim", prefix=prefix, key_hash=hash_key(text)))
    ApiKey.objects.bulk_create(keys, batch_size=1000)
    return texts


def load(server, keys: list[str], rate: float, seconds: float) -> dict:
    """Send ``rate`` heartbeats per second for ``seconds``; latency and error counts."""
    import requests

    total = int(rate * seconds)
    url = server.url + "/api/agent/v1/heartbeat/"
    counter = iter(range(total))
    lock = threading.Lock()
    latencies, lags = [], []
    errors = Counter()
    start = time.perf_counter() + 0.5

    def sender():
        session = requests.Session()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            due = start + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            sent = time.perf_counter()
            if sent > start + seconds + GRACE:  # the window is over: what is left is not sent
                with lock:
                    errors["not sent (window over)"] += 1
                continue
            try:
                answer = session.post(url, json=PAYLOAD, timeout=30,
                                      headers={"Authorization": f"Api-Key {keys[i % len(keys)]}"})
                ok = answer.status_code == 200
                failure = None if ok else answer.status_code
            except requests.RequestException as exc:
                failure = type(exc).__name__
            took = time.perf_counter() - sent
            with lock:
                lags.append(sent - due)
                if failure is None:
                    latencies.append(took)
                else:
                    errors[failure] += 1

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    elapsed = time.perf_counter() - start
    answered = len(latencies) + sum(n for kind, n in errors.items() if kind != "not sent (window over)")
    return {"target_per_s": rate, "due": total, "sent": answered, "achieved_per_s": round(answered / elapsed, 1),
            "p50_ms": ms(percentile(latencies, 50)), "p99_ms": ms(percentile(latencies, 99)),
            "errors": answered - len(latencies), "not_sent": errors.pop("not sent (window over)", 0),
            "error_kinds": {str(k): v for k, v in errors.items()},
            "lag_p99_ms": ms(percentile(lags, 99))}


def heartbeats(ctx) -> dict:
    """Figure 4."""
    keys = simulated_clusters(ctx.profile.hb_clusters, ctx.run_id)
    out = {"clusters": len(keys), "seconds": ctx.profile.hb_seconds}
    for rate in (200, 1000):
        runs = [load(ctx.server, keys, rate, ctx.profile.hb_seconds) for _ in range(ctx.profile.repeats)]
        out[f"at_{rate}"] = {**summarise(runs), "runs": runs}
    return out
