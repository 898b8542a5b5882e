"""What the benchmarks run against, started fresh on this machine: a PostgreSQL database
(migrated), Django in this process (for fixtures, bulk SQL and query counts), the web app
under gunicorn, and agents as subprocesses. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = ROOT / "var" / "bench"
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
DB_NAME = "siestaflow_bench"
GUNICORN_ARGS = os.environ.get("BENCH_GUNICORN_ARGS", "-k gthread -w 2 --threads 8").split()
"""How gunicorn serves the app (workers, worker class): the README's deployment, or
``BENCH_GUNICORN_ARGS`` to compare another."""
REDIS_URL = "redis://127.0.0.1:6379/13"  # Celery's broker and the cache, as in production
ADMIN = "bench-admin"
PASSWORD = secrets.token_urlsafe(16)


def settings_environment(db_name: str = DB_NAME) -> dict[str, str]:
    """The production-like settings this process, gunicorn and Celery run with (DEBUG off,
    plain HTTP on loopback, Redis db 13 as broker and cache)."""
    return {
        "DATABASE_URL": f"{PG_SERVER}/{db_name}", "DEBUG": "false",
        "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver", "SECURE_SSL_REDIRECT": "false", "SECURE_HSTS_SECONDS": "0",
        "VAR_DIR": str(OUT / "var"), "STATIC_ROOT": str(OUT / "static"), "MEDIA_ROOT": str(OUT / "media"),
        "MAIL_PROVIDER": "file", "JWT_ACCESS_MINUTES": "600", "LOG_LEVEL": "warning",
        "MODEL_NETWORK_MODE": "host", "LEASE_SECONDS": "900", "DJANGO_SETTINGS_MODULE": "siestaflow.settings",
        "REDIS_URL": REDIS_URL,
    }


def create_database(db_name: str = DB_NAME) -> None:
    """Drop and create the bench database (its name starts with siestaflow_bench)."""
    import psycopg

    assert db_name.startswith("siestaflow_bench")
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def setup_django(db_name: str = DB_NAME) -> None:
    """Point this process at the bench database, migrate it, collect static files."""
    OUT.mkdir(parents=True, exist_ok=True)
    flush_redis()
    os.environ.update(settings_environment(db_name))
    os.environ["BENCH_SECRET_KEY"] = os.environ["SECRET_KEY"]
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """The web app under gunicorn."""

    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        stop_process(self.process)


def start_gunicorn() -> Server:
    port = free_port()
    log = (OUT / "gunicorn.log").open("ab")
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "siestaflow.wsgi", *GUNICORN_ARGS, "-b", f"127.0.0.1:{port}",
         "--timeout", "120", "--graceful-timeout", "5", "--log-level", "warning"],
        cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            requests.get(url + "/api/me/", timeout=2)
            return Server(process, url)
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}: see {OUT / 'gunicorn.log'}")
        time.sleep(0.2)
    stop_process(process)
    raise RuntimeError("gunicorn did not answer within 60 s")


def settle(timeout: float = 600.0) -> float:
    """Wait until the Celery worker has done what the last figure queued (the e-mail of
    thousands of claimed calculations, say), then VACUUM ANALYZE what the figure wrote
    (else autovacuum comes in a while later), so that the next figure does not share the
    machine with either. Returns the seconds waited."""
    import redis

    from siestaflow.celery import app

    broker, t0 = redis.Redis.from_url(REDIS_URL), time.perf_counter()
    inspect = app.control.inspect(timeout=1.0)
    while time.perf_counter() - t0 < timeout:
        if broker.llen("celery") == 0:
            busy = [*(inspect.active() or {}).values(), *(inspect.reserved() or {}).values()]
            if not any(busy):
                break
        time.sleep(0.5)
    vacuum()
    return round(time.perf_counter() - t0, 1)


def vacuum() -> None:
    """VACUUM ANALYZE the bench database now: what a figure wrote would otherwise bring
    autovacuum in a while later, in the middle of some figure's timings."""
    from django.db import connection

    with connection.cursor() as cursor:  # outside a transaction, as VACUUM must be
        cursor.execute("VACUUM (ANALYZE)")


def start_celery() -> subprocess.Popen:
    """One Celery worker (e-mail of calculation events, model readiness), as in production."""
    log = (OUT / "celery.log").open("ab")
    return subprocess.Popen([str(BIN / "celery"), "-A", "siestaflow", "worker", "-c", "1", "-l", "WARNING",
                             "--without-gossip", "--without-mingle"],
                            cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=log, start_new_session=True)


def stop_process(process: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM the process (and its session), SIGKILL after ``grace`` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


# --- fixtures ---------------------------------------------------------------------------


def admin_user():
    from accounts.models import User

    user = User.objects.filter(username=ADMIN).first()
    return user or User.objects.create_user(username=ADMIN, password=PASSWORD, email="bench@localhost",
                                            role=User.Role.ADMIN)


def cluster_with_key(name: str, **fields) -> tuple[object, str]:
    """A cluster made through the product's services, with a fresh API key."""
    from clusters import services

    admin = admin_user()
    cluster = services.create_cluster(actor=admin, name=name, **fields)
    _key, text = services.create_key(actor=admin, cluster=cluster, name="bench")
    return cluster, text


def jwt_session(server: Server) -> requests.Session:
    """A requests session signed in with a JWT access token of the bench admin."""
    admin_user()
    session = requests.Session()
    answer = session.post(server.url + "/api/auth/token/", json={"username": ADMIN, "password": PASSWORD},
                          timeout=30)
    answer.raise_for_status()
    session.headers["Authorization"] = f"Bearer {answer.json()['access']}"
    return session


def page_session(server: Server) -> requests.Session:
    """A requests session carrying the bench admin's session cookie (as a browser would)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(admin_user())
    session = requests.Session()
    session.cookies.set(settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value)
    return session


def agent_session(key: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Api-Key {key}"
    return session


# --- agents -----------------------------------------------------------------------------

TINY_SCRIPT = """import json, sys
json.dump({"energy": -1.5, "argv": sys.argv[1:]}, open("result.json", "w"))
print("DONE")
"""


@dataclass
class Agent:
    """A ``siestaflow-agent run`` subprocess with its own work folder and TOML file."""

    process: subprocess.Popen
    folder: Path
    options: dict = field(default_factory=dict)

    def stop(self) -> None:
        stop_process(self.process, grace=30)


def start_agent(server: Server, key: str, **options) -> Agent:
    """Run an agent (local executor, command engine with the ``tiny`` program)."""
    folder = Path(tempfile.mkdtemp(prefix="agent-", dir=OUT))
    (folder / "tiny.py").write_text(TINY_SCRIPT)
    lines = [f'api_url = "{server.url}"', f'api_key = "{key}"', f'work_dir = "{folder / "work"}"',
             'executor = "local"']
    lines += [f"{name} = {value}" for name, value in options.items()]
    lines += ["[programs.tiny]", f'command = "{{python}} -I -S {folder / "tiny.py"} {{calculation_id}}"',
              'success = "^DONE"', 'results_json = "result.json"']
    (folder / "agent.toml").write_text("\n".join(lines) + "\n")
    log = (folder / "agent.log").open("ab")
    process = subprocess.Popen([str(BIN / "siestaflow-agent"), "run", "-c", str(folder / "agent.toml")],
                               cwd=folder, stdout=log, stderr=log, start_new_session=True)
    return Agent(process, folder, options)


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
