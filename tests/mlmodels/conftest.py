"""Fixtures for ML models.

Unit tests patch ``mlmodels.docker`` (the one module that talks to the engine and to the
containers) with ``FakeEngine``. Tests marked ``docker`` use a real engine (DOCKER_HOST; start
one with ``.ci/docker/up``) and the example image, built once per session by
``examples/models/build.sh``; without an engine they skip, unless SIESTAFLOW_REQUIRE_DOCKER=1.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from mlmodels import docker, services, tasks
from mlmodels.models import MLModel

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "models"
MISBEHAVING = Path(__file__).resolve().parent / "misbehaving"


# --- Celery: no broker in tests ----------------------------------------------------------


@dataclass
class Enqueued:
    calls: list = field(default_factory=list)

    def of(self, name: str) -> list:
        return [args for task, args in self.calls if task == name]


@pytest.fixture(autouse=True)
def enqueued(monkeypatch) -> Enqueued:
    """``.delay`` of the app's tasks records (task name, args) instead of sending."""
    record = Enqueued()
    for task in (tasks.await_ready, tasks.mail_crash_loop):
        monkeypatch.setattr(task, "delay", lambda *args, _name=task.name: record.calls.append((_name, args)))
    return record


# --- A fake engine ------------------------------------------------------------------------


@dataclass
class FakeContainer:
    id: str
    image: str
    address: str
    environment: dict
    status: str = "running"
    exit_code: int | None = None


class FakeEngine:
    """An engine and its containers' servers in memory. ``ping_reply``/``invoke_reply`` (or a
    callable) decide what the servers answer; ``images`` what the engine has."""

    def __init__(self):
        self.available = True
        self.images = {"energy:1", "energy:2"}
        self.containers: dict[str, FakeContainer] = {}
        self.ids = itertools.count(1)
        self.ping_reply: docker.Ping | None = None  # None: 200 while the container runs
        self.invoke_reply = docker.Reply(200, b'{"predictions": [1.5]}', "application/json", 3.0)
        self.invocations: list[tuple[str, bytes, str]] = []
        self.stopped: list[str] = []
        self.killed: list[str] = []
        self.removed_images: list[str] = []
        self.listed: list[docker.Listed] = []

    def _up(self):
        if not self.available:
            raise docker.DockerUnavailable("No Docker engine answers at unix:///fake.sock: refused")

    # the engine
    def engine_version(self):
        self._up()
        return "20.10.24 (API 1.41)"

    def image_exists(self, image):
        self._up()
        return image in self.images

    def remove_image(self, image):
        self._up()
        self.removed_images.append(image)
        return self.images.discard(image) is None

    def run_model(self, *, name, image, environment, labels, memory_mb=None, cpus=None, avoid_ports=()):
        self._up()
        if image not in self.images:
            raise docker.ImageNotFound(f"Image {image} is not on the Docker engine: build it there, or pull it, first.")
        n = next(self.ids)
        container = FakeContainer(f"c{n:063d}", image, f"127.0.0.1:{20000 + n}", environment)
        self.containers[container.id] = container
        return docker.Started(container.id, container.address)

    def inspect(self, container_id):
        self._up()
        c = self.containers.get(container_id)
        return docker.ContainerState(c.status, c.exit_code) if c else docker.ContainerState("missing")

    def logs_tail(self, container_id, lines=20):
        self._up()
        return "Traceback: boom" if container_id in self.containers else ""

    def stop(self, container_id, *, timeout=None):
        self._up()
        self.stopped.append(container_id)
        self.containers.pop(container_id, None)

    def kill(self, container_id):
        self._up()
        if container_id in self.containers:
            self.killed.append(container_id)
        self.containers.pop(container_id, None)

    def list_model_containers(self, owner):
        self._up()
        return list(self.listed)

    # the servers
    def _container_at(self, address):
        return next((c for c in self.containers.values() if c.address == address), None)

    def ping(self, address, *, timeout=2.0):
        if self.ping_reply is not None:
            return self.ping_reply
        c = self._container_at(address)
        if c is None or c.status != "running":
            return docker.Ping(False, None, None, "/ping failed: connection refused")
        return docker.Ping(True, 200, 0.4)

    def invoke(self, address, body, *, content_type, accept="", timeout, max_bytes):
        self.invocations.append((address, body, content_type))
        reply = self.invoke_reply
        if callable(reply):
            return reply(address, body, content_type)
        if isinstance(reply, Exception):
            raise reply
        return reply

    # test helpers
    def crash(self, container_id, code=137):
        self.containers[container_id].status, self.containers[container_id].exit_code = "exited", code

    def running(self) -> list[str]:
        return [c.id for c in self.containers.values() if c.status == "running"]


@pytest.fixture
def fake_docker(monkeypatch) -> FakeEngine:
    engine = FakeEngine()
    for name in ("engine_version", "image_exists", "remove_image", "run_model", "inspect", "logs_tail", "stop",
                 "kill", "list_model_containers", "ping", "invoke"):
        monkeypatch.setattr(docker, name, getattr(engine, name))
    return engine


@pytest.fixture
def make_model(root, fake_docker):
    def make(name="energy", image="energy:1", **fields) -> MLModel:
        return services.register_model(actor=root, name=name, image=image, **fields)

    return make


@pytest.fixture
def running_model(make_model, alice):
    """A model started and found ready."""
    model = make_model(version="1.0")
    services.start_model(actor=alice, model=model)
    services.check_ready(model_id=model.pk)
    model.refresh_from_db()
    assert model.state == MLModel.State.RUNNING
    return model


# --- A real engine ------------------------------------------------------------------------


def _no_engine_reason() -> str | None:
    try:
        docker.engine_version()
    except docker.DockerError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def engine() -> str:
    """The real engine's DOCKER_HOST; skips (or fails with SIESTAFLOW_REQUIRE_DOCKER=1) without one."""
    reason = _no_engine_reason()
    if reason:
        message = (f"no Docker engine: {reason}. Start one with `.ci/docker/up` (as root) and run with "
                   "DOCKER_HOST pointing at it.")
        if os.environ.get("SIESTAFLOW_REQUIRE_DOCKER") == "1":
            pytest.fail(f"SIESTAFLOW_REQUIRE_DOCKER=1 but {message}", pytrace=False)
        pytest.skip(message)
    return django_settings.DOCKER_HOST


def docker_cli(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """The docker CLI against the tests' engine (tests never import the docker SDK)."""
    env = {**os.environ, "DOCKER_HOST": django_settings.DOCKER_HOST, "DOCKER_BUILDKIT": "0"}
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, check=check, timeout=timeout)


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


@pytest.fixture(scope="session")
def example_image(engine, tmp_path_factory) -> str:
    """The example model trained on the sample export and built offline by build.sh; reused
    while the server, Dockerfile and training data are unchanged."""
    model_dir = tmp_path_factory.mktemp("model")
    subprocess.run([sys.executable, str(EXAMPLE / "train.py"), str(EXAMPLE / "sample-dataset.jsonl"),
                    "-o", str(model_dir)], check=True, capture_output=True, timeout=60)
    tag = "siestaflow-example-model:test-" + _digest(EXAMPLE / "serve", EXAMPLE / "Dockerfile",
                                                     EXAMPLE / "build.sh", model_dir / "model.json")
    if not docker.image_exists(tag):
        env = {**os.environ, "DOCKER_HOST": django_settings.DOCKER_HOST}
        built = subprocess.run([str(EXAMPLE / "build.sh"), str(model_dir), tag], env=env, capture_output=True,
                               text=True, timeout=600)
        assert built.returncode == 0, built.stderr
    return tag


@pytest.fixture(scope="session")
def misbehaving_image(example_image) -> str:
    """The example image with a server that misbehaves as its MODE variable says."""
    tag = (f"siestaflow-misbehaving-model:test-{_digest(MISBEHAVING / 'serve', MISBEHAVING / 'Dockerfile')}"
           f"-{example_image.rsplit('-', 1)[1]}")
    if not docker.image_exists(tag):
        docker_cli("build", "-q", "--build-arg", f"BASE={example_image}", "-t", tag, str(MISBEHAVING))
    return tag


@pytest.fixture
def real_engine(engine, settings):
    """Settings for a bridge-less test engine, quick timeouts; removes the test's containers after."""
    settings.MODEL_NETWORK_MODE = "host"
    settings.MODEL_STOP_TIMEOUT = 1
    settings.MODEL_INVOKE_TIMEOUT = 5
    yield engine
    for listed in docker.list_model_containers(services.owner_label()):
        docker.kill(listed.container_id)
