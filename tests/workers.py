"""A real Celery worker in a subprocess, sharing the test database, for tests whose
behaviour depends on task boundaries (serialisation, commit visibility, retries)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from celery import Celery
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    """The URL of the database this test process uses (the test database)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def filesystem_broker(var_dir: Path) -> dict:
    broker = var_dir / "celery" / "broker"
    broker.mkdir(parents=True, exist_ok=True)
    (var_dir / "celery" / "processed").mkdir(parents=True, exist_ok=True)
    return {"broker": "filesystem://", "broker_transport_options": {
        "data_folder_in": str(broker), "data_folder_out": str(broker),
        "processed_folder": str(var_dir / "celery" / "processed"),
        "control_folder": str(var_dir / "celery" / "control")}}


@contextmanager
def celery_worker(var_dir: Path, redis_url: str | None = None, **env):
    """Start ``celery worker`` on the filesystem broker in ``var_dir`` (or on ``redis_url``)
    with its own queue; yields a producer app and the queue name."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    environment = {**os.environ, "VAR_DIR": str(var_dir), "DATABASE_URL": database_url(),
                   "MAIL_PROVIDER": "file", "EMAIL_FILE_PATH": str(var_dir / "mail"), **env}
    environment.pop("REDIS_URL", None)
    if redis_url:
        environment["REDIS_URL"] = redis_url
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "siestaflow", "worker", "--pool=solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    conf = {"broker": redis_url} if redis_url else filesystem_broker(var_dir)
    producer = Celery("producer", **conf)
    producer.conf.task_serializer = "json"
    try:
        yield producer, queue
    finally:
        process.terminate()
        try:
            out, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        celery_worker.last_output = out


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; that value, or None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None
