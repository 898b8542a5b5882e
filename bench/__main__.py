"""``python -m bench [--quick] [--only NAME ...]``: start what the figures need, run them,
print one table and write ``var/bench/results.json``. Benchmarks print numbers: a missed
target never makes this fail (a figure that breaks is reported as an error, and the
others still run)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime

from bench import env, machine
from bench.report import table

FIGURES = ("end_to_end", "pickup", "claims", "heartbeats", "extraction", "pages", "proxy")


@dataclasses.dataclass(frozen=True)
class Profile:
    """Sizes and repeats: ``full`` is the issue's figures (~20 min on 2 cores), ``quick`` a smoke run."""

    repeats: int = 3
    e2e_n: int = 1000
    e2e_timeout: float = 400
    pickup_samples: int = 15
    claim_n: int = 5000
    hb_clusters: int = 2000
    hb_seconds: float = 10
    extraction_bytes: int = 1_000_000_000
    extraction_timeout: float = 420
    page_calcs: int = 100_000
    page_heartbeats: int = 5_000_000
    page_samples: int = 40
    proxy_n: int = 300


QUICK = Profile(repeats=2, e2e_n=40, e2e_timeout=90, pickup_samples=5, claim_n=1000, hb_seconds=5,
                extraction_bytes=100_000_000, extraction_timeout=120, page_calcs=10_000, page_heartbeats=500_000,
                page_samples=15, proxy_n=100)


@dataclasses.dataclass
class Context:
    profile: Profile
    server: env.Server | None
    run_id: str


def run_figure(name: str, ctx: Context) -> dict:
    from bench import claims, e2e, extraction, heartbeats, pages, proxy

    functions = {"end_to_end": e2e.end_to_end, "pickup": e2e.pickup, "claims": claims.contention,
                 "heartbeats": heartbeats.heartbeats, "extraction": extraction.extraction, "pages": pages.pages,
                 "proxy": proxy.proxy}
    t0 = time.perf_counter()
    try:
        result = functions[name](ctx)
    except Exception as exc:  # one broken figure must not hide the others
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["bench_seconds"] = round(time.perf_counter() - t0, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 repeats (~2-3 minutes)")
    parser.add_argument("--only", action="append", choices=FIGURES, metavar="NAME",
                        help=f"run only this figure (repeatable): {', '.join(FIGURES)}")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else Profile()
    names = [n for n in FIGURES if not args.only or n in args.only]
    started = datetime.now(UTC)
    load = os.getloadavg()
    print(f"bench: load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cpus (other work on "
          "this machine makes every figure worse)", flush=True)
    print(f"bench: {'quick' if args.quick else 'full'} run of {', '.join(names)}; "
          f"database {env.DB_NAME}, logs in {env.OUT}", flush=True)
    env.create_database()
    env.setup_django()
    speed = machine.speed()
    print(f"bench: this machine: {machine.describe(speed)} (compare runs at similar values only)", flush=True)
    server = env.start_gunicorn() if set(names) - {"extraction"} else None
    celery = env.start_celery() if server else None
    ctx = Context(profile, server, started.strftime("%H%M%S"))
    results = {}
    try:
        for name in names:
            print(f"bench: {name} ...", flush=True)
            results[name] = run_figure(name, ctx)
            print(f"bench: {name} done in {results[name]['bench_seconds']} s", flush=True)
            if celery:
                results[name]["settle_seconds"] = env.settle()
                print(f"bench: the worker caught up with {name}'s tasks in {results[name]['settle_seconds']} s",
                      flush=True)
    finally:
        if server:
            server.stop()
        if celery:
            env.stop_process(celery)
        env.flush_redis()
    document = {"meta": {**_meta(args, profile, started), "speed": speed}, "figures": results}
    env.OUT.mkdir(parents=True, exist_ok=True)
    (env.OUT / "results.json").write_text(json.dumps(document, indent=2, default=str))
    print(table(results, profile))
    print(f"\nthis machine: {machine.describe(speed)}")
    print(f"written to {env.OUT / 'results.json'}")
    return 0


def _meta(args, profile: Profile, started: datetime) -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=env.ROOT)
    return {"started": started.isoformat(), "finished": datetime.now(UTC).isoformat(),
            "mode": "quick" if args.quick else "full", "profile": dataclasses.asdict(profile),
            "commit": commit.stdout.strip(), "python": sys.version.split()[0], "cpus": os.cpu_count(),
            "machine": platform.platform(), "gunicorn_args": " ".join(env.GUNICORN_ARGS),
            "load_average_at_end": os.getloadavg()}


if __name__ == "__main__":
    sys.exit(main())
