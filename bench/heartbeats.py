"""Figure 4: heartbeats of thousands of simulated clusters at a fixed rate.

An open-loop load: request ``i`` is due at ``start + i / rate`` whatever the earlier answers
did, sent by a pool of threads, the clusters taken in turn. Each request is sent with the
standard library's ``http.client`` on a connection of its own (each simulated cluster is a
machine of its own, with its own connection), not with ``requests``: the generator shares the 2 cores
with the server, and ``requests`` cost it about three times the CPU per heartbeat. Latency
is from sending to the full answer; ``lag_p99_ms`` says how late the client itself sent
(when it is large, the figure is limited by the load generator on these 2 cores)."""

from __future__ import annotations

import http.client
import json
import secrets
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

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
    total = int(rate * seconds)
    address = urlsplit(server.url)
    body = json.dumps(PAYLOAD).encode()
    counter = iter(range(total))
    lock = threading.Lock()
    latencies, lags = [], []
    errors = Counter()
    start = time.perf_counter() + 0.5

    def send(key: str) -> int:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        try:
            connection.request("POST", "/api/agent/v1/heartbeat/", body=body,
                               headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            return answer.status
        finally:
            connection.close()

    def sender():
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
                status = send(keys[i % len(keys)])
                failure = None if status == 200 else status
            except (OSError, http.client.HTTPException) as exc:
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
