"""Real running pieces for end-to-end tests: the siestaflow server and a ``siestaflow-agent``.

Both run as subprocesses, each in its own process group, so a test can kill the server
(an outage) or stop the agent (a restart) and start them again on the same port and work
folder. The server is gunicorn on the test database (``tests.workers.database_url``): what
the test process commits, the server sees, and the other way round. Nothing here mocks
anything.

The session fixtures at the end (``live_siestaflow``, ``live_cluster``, ``live_agent``, ...)
are meant to be reused: import them into a ``conftest.py``, as ``tests/e2e/conftest.py``
does, with the autouse ``live_db_access``. Tests using them must not use pytest-django's
``db`` (its transaction would hide their rows from the server); ``live_db_access`` gives
them the ORM in autocommit mode instead. pytest-django runs tests without a ``db`` marker
after the database tests, so the rows these fixtures commit never meet another test's
assertions.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from siestaflow_agent.config import to_toml

from clusters.models import ApiKey, Cluster
from tests.factories import PASSWORD, UserFactory
from tests.workers import ROOT, database_url, wait_for

BIN = Path(sys.executable).parent
AGENT = BIN / "siestaflow-agent"
HELD_PYSCF = ROOT / "tests" / "e2e" / "held_pyscf.py"
NO_SIESTA_PATH = "/usr/bin:/bin"  # the agents here must not find a siesta some machine may have


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Subprocess:
    """A command in its own process group, its output appended to ``log``."""

    def __init__(self, argv: list[str], *, log: Path, env: dict[str, str], cwd: Path = ROOT) -> None:
        self.argv, self.log, self.env, self.cwd = argv, log, env, cwd
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, sig: int) -> None:
        """Send ``sig`` to the whole group (gunicorn's workers, the agent)."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Signal the group and wait for the leader; SIGKILL if it outstays ``timeout``."""
        if self.process is None:
            return None
        self.send(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            code = self.process.wait(5)
        self.send(signal.SIGKILL)  # stragglers of the group (gunicorn workers)
        return code

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class LiveServer(Subprocess):
    """siestaflow under gunicorn (one worker, threads for the agents' long polls)."""

    def __init__(self, *, database_url: str, var_dir: Path, port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        var_dir.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, "DATABASE_URL": database_url, "VAR_DIR": str(var_dir),
                       "MAIL_PROVIDER": "file", "EMAIL_FILE_PATH": str(var_dir / "mail"), "DEBUG": "true", **env}
        environment.pop("REDIS_URL", None)  # the filesystem broker in var_dir: never someone's Redis
        argv = [str(BIN / "gunicorn"), "siestaflow.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
                "--worker-class", "gthread", "--threads", "8", "--graceful-timeout", "2", "--no-control-socket"]
        super().__init__(argv, log=var_dir / "server.log", env=environment)

    def start(self, timeout: float = 60.0) -> LiveServer:
        """Start and wait until it answers HTTP."""
        super().start()
        if not wait_for(self.answers, timeout=timeout, interval=0.1):
            self.stop(signal.SIGKILL)
            raise RuntimeError(f"the server did not answer on {self.url}:\n{self.output()[-3000:]}")
        return self

    def answers(self) -> bool:
        """Any HTTP answer (the agent API answers 401/405 without a key)."""
        if not self.running:
            raise RuntimeError(f"the server exited:\n{self.output()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/api/agent/v1/heartbeat/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def kill(self) -> None:
        """An outage: SIGKILL, no goodbye; the port is free afterwards."""
        self.stop(signal.SIGKILL)
        wait_for(lambda: not self.answers_quietly(), timeout=10)

    def answers_quietly(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def request(self, method: str, path: str, *, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        """A JSON request to the server: ``(status, parsed body)``."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def write_agent_config(path: Path, **values: Any) -> Path:
    """An agent's TOML configuration, readable by its owner only (it holds the key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(to_toml(values))
    return path


class LiveAgent(Subprocess):
    """``siestaflow-agent run --config PATH``; its outbox and state are in ``work_dir``."""

    def __init__(self, config: Path, work_dir: Path, **env: str) -> None:
        self.config, self.work_dir = config, work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SIESTAFLOW_AGENT_")}
        super().__init__([str(AGENT), "run", "--config", str(config)], log=work_dir.parent / "agent.log",
                         env={**environment, **env}, cwd=work_dir.parent)

    def start(self, timeout: float = 30.0) -> LiveAgent:
        """Start and wait until its loop runs (it logs ``started``)."""
        starts = self.output().count(" started in ")
        super().start()
        if not wait_for(lambda: self.output().count(" started in ") > starts or not self.running, timeout=timeout):
            raise RuntimeError(f"the agent did not start:\n{self.output()[-3000:]}")
        if not self.running:
            raise RuntimeError(f"the agent exited:\n{self.output()[-3000:]}")
        return self

    def outbox(self, query: str, *args: Any) -> list[tuple]:
        """Rows of the agent's outbox database, read-only (safe while the agent writes)."""
        db = sqlite3.connect(f"file:{self.work_dir / 'outbox.sqlite3'}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute(query, args).fetchall()
        finally:
            db.close()

    def outbox_entries(self, calc_id: int, kind: str, status: str | None = None) -> list[dict[str, Any]]:
        """The bodies of one calculation's outbox entries of ``kind`` (optionally by status), in order."""
        rows = self.outbox("SELECT body FROM entries WHERE calc_id=? AND kind=? AND status=COALESCE(?, status) "
                           "ORDER BY id", calc_id, kind, status)
        return [json.loads(body) for (body,) in rows]

    def pending(self, calc_id: int) -> int:
        return self.outbox("SELECT COUNT(*) FROM entries WHERE calc_id=? AND status='pending'", calc_id)[0][0]


def wait_until(predicate, timeout: float = 60.0, what: str = "the condition", interval: float = 0.1):
    """``wait_for`` that fails the test with ``what`` when the time is up."""
    value = wait_for(predicate, timeout=timeout, interval=interval)
    if not value:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
    return value


def pid_alive(pid: int) -> bool:
    """Is ``pid`` a live process (not a zombie)?"""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- Session fixtures ------------------------------------------------------------------


@dataclasses.dataclass
class Gate:
    """The folder ``held_pyscf.py`` watches: ``hold()`` keeps new and waiting runs waiting."""

    path: Path

    def hold(self) -> None:
        (self.path / "hold").touch()

    def release(self) -> None:
        (self.path / "hold").unlink(missing_ok=True)

    def starts(self, calc_id: int | None = None) -> list[tuple[Path, int]]:
        """``(step folder, pid)`` of every run started (of one calculation), in order."""
        log = self.path / "starts.log"
        lines = log.read_text().splitlines() if log.exists() else []
        starts = [(Path(folder), int(pid)) for folder, pid in (line.rsplit(" ", 1) for line in lines)]
        return [s for s in starts if calc_id is None or f"/calc-{calc_id}/" in f"{s[0]}/"]


@dataclasses.dataclass
class LiveCluster:
    """The session's cluster, its key and the key's text (what the agent's file holds)."""

    cluster: Cluster
    key: ApiKey
    key_text: str


@pytest.fixture(autouse=True)
def live_db_access(django_db_blocker):
    """The ORM in autocommit mode: what a test writes, the server sees at once."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="session")
def live_database(django_db_setup, django_db_blocker):
    """The test database. pytest-django creates it only when a collected test asks for
    ``db``; these tests do not (see above), so when they run alone it is created here."""
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        if connection.settings_dict["NAME"] == connection.creation._get_test_db_name():
            yield
            return
        created = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        teardown_databases(created, verbosity=0)


@pytest.fixture(scope="session")
def live_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("live")


@pytest.fixture(scope="session")
def live_siestaflow(live_database, django_db_blocker, live_dir):
    """siestaflow under gunicorn on the test database (``.url``, ``.kill()``, ``.start()``)."""
    with django_db_blocker.unblock():
        url = database_url()
    server = LiveServer(database_url=url, var_dir=live_dir / "server", MEDIA_ROOT=str(settings.MEDIA_ROOT))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_admin(live_database, django_db_blocker):
    with django_db_blocker.unblock():
        return UserFactory(username="live-admin", role="admin")


@pytest.fixture(scope="session")
def live_user(live_database, django_db_blocker):
    with django_db_blocker.unblock():
        return UserFactory(username="live-user", role="user")


@pytest.fixture(scope="session")
def live_token(live_siestaflow, live_user) -> str:
    """A JWT access token of ``live_user``, from the server's sign-in endpoint."""
    status, body = live_siestaflow.request("POST", "/api/auth/token/",
                                           body={"username": live_user.username, "password": PASSWORD})
    assert status == 200, body
    return body["access"]


@pytest.fixture(scope="session")
def live_cluster(django_db_blocker, live_admin) -> LiveCluster:
    """Cluster ``live`` (heartbeat every second) with an API key made by the admin."""
    from clusters import services

    with django_db_blocker.unblock():
        cluster = services.create_cluster(actor=live_admin, name="live", heartbeat_interval=1, max_concurrent=2)
        key, text = services.create_key(actor=live_admin, cluster=cluster, name="live agent")
    return LiveCluster(cluster, key, text)


@pytest.fixture(scope="session")
def live_water(django_db_blocker, live_user):
    """Water (experimental geometry), owned by ``live_user``."""
    from molecules import services

    with django_db_blocker.unblock():
        return services.create_molecule(
            actor=live_user, name="live water", species=["O", "H", "H"],
            positions=[[0.0, -0.065564, 0.0], [0.75695, 0.520318, 0.0], [-0.75695, 0.520318, 0.0]])


@pytest.fixture(scope="session")
def live_gate(live_dir) -> Gate:
    path = live_dir / "gate"
    path.mkdir()
    return Gate(path)


@pytest.fixture(scope="session")
def live_agent_config(live_siestaflow, live_cluster, live_dir) -> Path:
    """The agent's TOML: short intervals, local executor, PySCF behind the gate."""
    return write_agent_config(
        live_dir / "agent" / "agent.toml", api_url=live_siestaflow.url, api_key=live_cluster.key_text,
        work_dir=str(live_dir / "agent" / "work"), heartbeat_interval=0.5, poll_interval=0.2, claim_wait=2,
        max_concurrent=2, executor="local", request_timeout=5,
        engines={"pyscf": f"{{python}} {HELD_PYSCF}"})


@pytest.fixture(scope="session")
def live_agent(live_siestaflow, live_agent_config, live_dir, live_gate):
    """``siestaflow-agent run`` for cluster ``live`` (``.work_dir``, ``.outbox(...)``, ``.stop()``)."""
    gate = live_gate
    agent = LiveAgent(live_agent_config, live_dir / "agent" / "work", SIESTAFLOW_TEST_GATE=str(gate.path),
                      PATH=NO_SIESTA_PATH)
    agent.start()
    yield agent
    gate.release()
    agent.stop(signal.SIGTERM)


@pytest.fixture
def live_running(live_siestaflow, live_agent, live_gate):
    """Both processes up before the test and after it (a test may stop either), gate open."""
    yield live_siestaflow, live_agent
    live_gate.release()
    if not live_siestaflow.running:
        live_siestaflow.start()
    if not live_agent.running:
        live_agent.start()


def wait_for_state(calc, *states: str, timeout: float = 60.0):
    """Reload ``calc`` until its state is one of ``states``; fail with its story otherwise."""
    def reached():
        calc.refresh_from_db()
        return calc.state in states

    try:
        wait_until(reached, timeout=timeout, what=f"calculation {calc.pk} to be {' or '.join(states)}")
    except AssertionError as error:
        story = [(e.to_state, e.step, e.reason) for e in calc.events.order_by("id")]
        raise AssertionError(f"{error}; it is {calc.state}: {story} {calc.failure_reason}") from None
    return calc
