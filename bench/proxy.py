"""Figure 7: what a prediction through siestaflow costs over the same call made directly to
the model's container. The example model (examples/models) is built with its build.sh,
registered and started through ``mlmodels.services`` (host networking), then called in
alternating blocks: directly at its address, and through gunicorn
(``POST /api/models/<id>/invocations/``, JWT). The overhead is the difference of the
percentiles, per repeat; the figure is their median. Beside it, the floor any request pays:
``GET /api/me/`` with the same JWT, by the same client."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import env
from bench.stats import ms, percentile

EXAMPLE = env.ROOT / "examples" / "models"
BODY = json.dumps({"instances": ["H2O", {"C": 6, "H": 6}, "CH4"]}).encode()


def example_image() -> str:
    """The example model image, built once per version of its sources."""
    from mlmodels import docker

    folder = Path(tempfile.mkdtemp(prefix="model-", dir=env.OUT))
    try:
        subprocess.run([sys.executable, str(EXAMPLE / "train.py"), str(EXAMPLE / "sample-dataset.jsonl"),
                        "-o", str(folder)], check=True, capture_output=True, timeout=120)
        digest = hashlib.sha256()
        for path in (EXAMPLE / "serve", EXAMPLE / "Dockerfile", folder / "model.json"):
            digest.update(path.read_bytes())
        tag = f"siestaflow-example-model:bench-{digest.hexdigest()[:12]}"
        if not docker.image_exists(tag):
            subprocess.run([str(EXAMPLE / "build.sh"), str(folder), tag], check=True, capture_output=True,
                           timeout=900)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return tag


def _timed(send, samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        answer = send()
        times.append(time.perf_counter() - t0)
        if answer.status_code != 200:
            raise RuntimeError(f"invocation answered {answer.status_code}: {answer.text[:200]}")
    return times


def proxy(ctx) -> dict:
    """Figure 7 (skipped when no Docker engine answers)."""
    import requests

    from mlmodels import docker, services
    from mlmodels.models import MLModel

    try:
        version = docker.engine_version()
    except docker.DockerError as exc:
        return {"skipped": f"no Docker engine: {exc}"}
    admin = env.admin_user()
    model = services.register_model(actor=admin, name=f"bench-{ctx.run_id}", image=example_image())
    services.start_model(actor=admin, model=model)
    try:
        ready = env.wait_for(lambda: (services.check_ready(model_id=model.pk) or model).state == MLModel.State.RUNNING,
                             60, interval=0.2)
        model = MLModel.objects.get(pk=model.pk)
        if not ready:
            return {"skipped": f"the model did not become ready: {model.state} {model.last_error}"}
        direct, through = requests.Session(), env.jwt_session(ctx.server)
        headers = {"Content-Type": "application/json"}
        direct_url = f"http://{model.address}/invocations"
        proxy_url = f"{ctx.server.url}/api/models/{model.pk}/invocations/"
        me_url = f"{ctx.server.url}/api/me/"
        runs = []
        for _ in range(ctx.profile.repeats):
            _timed(lambda: direct.post(direct_url, data=BODY, headers=headers, timeout=30), 5)  # warm-up
            _timed(lambda: through.post(proxy_url, data=BODY, headers=headers, timeout=30), 5)
            d = _timed(lambda: direct.post(direct_url, data=BODY, headers=headers, timeout=30), ctx.profile.proxy_n)
            p = _timed(lambda: through.post(proxy_url, data=BODY, headers=headers, timeout=30), ctx.profile.proxy_n)
            # the floor: the smallest authenticated request, by the same client, to the same server
            f = _timed(lambda: through.get(me_url, timeout=30), ctx.profile.proxy_n)
            runs.append({"direct_p50_ms": ms(percentile(d, 50)), "direct_p99_ms": ms(percentile(d, 99)),
                         "proxy_p50_ms": ms(percentile(p, 50)), "proxy_p99_ms": ms(percentile(p, 99)),
                         "me_p50_ms": ms(percentile(f, 50)), "me_p99_ms": ms(percentile(f, 99))})
            runs[-1]["overhead_p50_ms"] = round(runs[-1]["proxy_p50_ms"] - runs[-1]["direct_p50_ms"], 2)
            runs[-1]["overhead_p99_ms"] = round(runs[-1]["proxy_p99_ms"] - runs[-1]["direct_p99_ms"], 2)
    finally:
        services.stop_model(actor=admin, model=model)
    from bench.stats import summarise

    return {**summarise(runs), "engine": version, "image": model.image, "samples": ctx.profile.proxy_n,
            "runs": runs}
