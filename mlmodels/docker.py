"""The one place that talks to model containers: the Docker engine (through the docker SDK,
imported nowhere else) and the containers' HTTP servers (SageMaker's bring-your-own-container
contract: ``GET /ping``, ``POST /invocations``).

Tests patch this module. Every failure is one of the exceptions below, with a message meant
for people: ``DockerUnavailable`` (no engine answers), ``ImageNotFound``, ``NoFreePort``,
``DockerError`` (anything else the engine refused) and, for the HTTP side,
``ContainerUnreachable``, ``ContainerTimeout`` and ``ResponseTooLarge``.

Networking (``MODEL_NETWORK_MODE``):

- ``published``: the container's port 8080 is published on a free loopback port of the host,
  which the engine picks; the address is read back from the container.
- ``host``: the container shares the host's network (engines without a bridge, as in CI);
  a free port is chosen here and passed as ``SAGEMAKER_BIND_TO_PORT``, with
  ``MODEL_SERVER_HOST=127.0.0.1`` so that servers honouring it listen on loopback only.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import docker
import docker.errors
import requests
import urllib3
from django.conf import settings

CONTAINER_PORT = 8080
LABEL_MODEL = "org.siestaflow.model"
LABEL_OWNER = "org.siestaflow.owner"
API_TIMEOUT = 30  # seconds for one call to the engine (stop adds its own grace period)
CONNECT_TIMEOUT = 2.0  # seconds to open a connection to a model container


# Keep-alive connections to the containers, reused call after call (a new TCP connection per
# prediction costs more than the proxy itself), through urllib3 itself: requests' extra layers
# (hooks, cookies, environment lookups) cost as much again as the call to a local container.
# Thread-safe; never retried or redirected: the caller decides what a failure means.
_HTTP = urllib3.PoolManager(num_pools=64, maxsize=8, retries=False)


class DockerError(Exception):
    """The engine refused or failed an operation; the message says what and why."""


class DockerUnavailable(DockerError):
    """No Docker engine answers at ``DOCKER_HOST``."""


class ImageNotFound(DockerError):
    """The image is not on the engine (siestaflow never pulls: images are built or pulled by admins)."""


class NoFreePort(DockerError):
    """No free host port for the container's server."""


class ContainerHTTPError(Exception):
    """A model container's server could not be asked."""


class ContainerUnreachable(ContainerHTTPError):
    """Nothing accepts connections at the container's address (not listening, or gone)."""


class ContainerTimeout(ContainerHTTPError):
    """The server took longer than the timeout to answer."""


class ResponseTooLarge(ContainerHTTPError):
    """The server's answer is larger than allowed."""


@dataclass(frozen=True)
class Started:
    container_id: str
    address: str  # host:port of the container's server, as seen from siestaflow


@dataclass(frozen=True)
class ContainerState:
    status: str  # created, running, paused, restarting, removing, exited, dead, or missing
    exit_code: int | None = None
    error: str = ""
    oom_killed: bool = False

    @property
    def running(self) -> bool:
        return self.status == "running"

    def describe(self) -> str:
        """``exited with code 137 (out of memory)``, for messages."""
        if self.status == "missing":
            return "is gone"
        text = f"is {self.status}"
        if self.status in ("exited", "dead"):
            text = f"exited with code {self.exit_code}"
        if self.oom_killed:
            text += " (out of memory)"
        return text + (f": {self.error}" if self.error else "")


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    latency_ms: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def message(self, limit: int = 500) -> str:
        """The server's error message: ``error``/``message``/``detail`` of a JSON body, else its text."""
        text = self.body[:limit * 4].decode("utf-8", "replace")
        if "json" in self.content_type:
            try:
                data = json.loads(self.body)
                if isinstance(data, dict):
                    for key in ("error", "message", "detail", "errorMessage"):
                        if data.get(key):
                            text = str(data[key])
                            break
            except ValueError:
                pass
        return text.strip()[:limit] or f"HTTP {self.status} with an empty body"


@dataclass(frozen=True)
class Ping:
    ok: bool  # answered 200
    status: int | None  # HTTP status, None when nothing answered
    latency_ms: float | None
    error: str = ""


# --- The engine -------------------------------------------------------------------------

_clients: dict[str, docker.DockerClient] = {}
_clients_lock = threading.Lock()


def _client() -> docker.DockerClient:
    host = settings.DOCKER_HOST
    with _clients_lock:
        client = _clients.get(host)
        if client is None:
            try:
                client = docker.DockerClient(base_url=host, timeout=API_TIMEOUT)
            except docker.errors.DockerException as exc:
                raise DockerUnavailable(f"No Docker engine answers at {host}: {_reason(exc)}") from exc
            _clients[host] = client
        return client


def _reason(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return " ".join(str(text).split())[:500]


class _Engine:
    """``with _engine(): ...`` turns the SDK's and requests' exceptions into this module's."""

    def __enter__(self):
        return _client()

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, DockerError):
            return False
        if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            with _clients_lock:
                _clients.pop(settings.DOCKER_HOST, None)
            raise DockerUnavailable(f"The Docker engine at {settings.DOCKER_HOST} does not answer: "
                                    f"{_reason(exc)}") from exc
        if isinstance(exc, docker.errors.ImageNotFound):
            raise ImageNotFound(_reason(exc)) from exc
        if isinstance(exc, docker.errors.DockerException):
            raise DockerError(_reason(exc)) from exc
        return False


_engine = _Engine


def engine_version() -> str:
    """The engine's version and API version, e.g. ``20.10.24 (API 1.41)``."""
    with _engine() as client:
        info = client.version()
    return f"{info.get('Version')} (API {info.get('ApiVersion')})"


def image_exists(image: str) -> bool:
    """Whether the engine has the image (DockerUnavailable when it cannot tell)."""
    with _engine() as client:
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as exc:
            if exc.status_code in (400, 404):  # an invalid reference is not there either
                return False
            raise
    return True


def remove_image(image: str) -> bool:
    """Remove the image from the engine; False when it was not there."""
    with _engine() as client:
        try:
            client.images.remove(image)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise DockerError(f"Image {image} is still used by a container: {_reason(exc)}") from exc
            raise
    return True


def _free_port(avoid: Iterable[int]) -> int:
    """A port nothing listens on now (the kernel's choice), not among ``avoid``."""
    avoid = set(avoid)
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", 0))
            except OSError as exc:
                raise NoFreePort(f"No free port on this host: {exc}") from exc
            port = s.getsockname()[1]
        if port not in avoid:
            return port
    raise NoFreePort("No free port on this host that no other model uses.")


def _limits(memory_mb: int | None, cpus: float | None) -> dict:
    limits = {}
    if memory_mb:
        limits["mem_limit"] = f"{int(memory_mb)}m"
    if cpus:
        limits["nano_cpus"] = int(float(cpus) * 1e9)
    return limits


def run_model(*, name: str, image: str, environment: dict[str, str], labels: dict[str, str],
              memory_mb: int | None = None, cpus: float | None = None, avoid_ports: Iterable[int] = ()) -> Started:
    """Run ``image serve`` detached (tini as PID 1), networked per ``MODEL_NETWORK_MODE``.

    Never pulls: a missing image raises ImageNotFound. The container is removed again when
    it cannot be started or its address cannot be found.
    """
    env = {**environment}
    options = {"detach": True, "init": True, "name": name, "labels": labels, **_limits(memory_mb, cpus)}
    if settings.MODEL_NETWORK_MODE == "host":
        port = _free_port(avoid_ports)
        env.update(SAGEMAKER_BIND_TO_PORT=str(port), MODEL_SERVER_HOST="127.0.0.1")
        options["network_mode"] = "host"
    else:
        options["ports"] = {f"{CONTAINER_PORT}/tcp": ("127.0.0.1", None)}
    with _engine() as client:
        try:
            container = client.containers.create(image, ["serve"], environment=env, **options)
        except docker.errors.ImageNotFound as exc:
            raise ImageNotFound(f"Image {image} is not on the Docker engine: build it there, or pull "
                                f"it, first ({_reason(exc)}).") from exc
        try:
            container.start()
            if settings.MODEL_NETWORK_MODE == "host":
                return Started(container.id, f"127.0.0.1:{port}")
            return Started(container.id, _published_address(container))
        except Exception as exc:
            container.remove(force=True)
            if isinstance(exc, docker.errors.APIError) and "port is already allocated" in str(exc):
                raise NoFreePort(f"The engine found no free port to publish: {_reason(exc)}") from exc
            raise


def _published_address(container) -> str:
    container.reload()
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{CONTAINER_PORT}/tcp")
    if not bindings:
        raise DockerError(
            f"The engine published no host port for the container's {CONTAINER_PORT} (an engine "
            "without a bridge network ignores published ports): use MODEL_NETWORK_MODE=host.")
    return f"127.0.0.1:{bindings[0]['HostPort']}"


def _container(client, container_id: str):
    try:
        return client.containers.get(container_id)
    except docker.errors.NotFound:
        return None


def inspect(container_id: str) -> ContainerState:
    """The container's state as the engine reports it now (``missing`` when it does not exist)."""
    with _engine() as client:
        container = _container(client, container_id) if container_id else None
        if container is None:
            return ContainerState("missing")
        state = container.attrs.get("State", {})
        return ContainerState(state.get("Status", container.status), state.get("ExitCode"),
                              state.get("Error") or "", bool(state.get("OOMKilled")))


def logs_tail(container_id: str, lines: int = 20) -> str:
    """The last lines of the container's output ('' when it is gone)."""
    with _engine() as client:
        container = _container(client, container_id)
        if container is None:
            return ""
        return container.logs(tail=lines).decode("utf-8", "replace").strip()


def stop(container_id: str, *, timeout: int | None = None) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` (default MODEL_STOP_TIMEOUT) seconds, then remove.
    A container that is already gone is fine."""
    timeout = settings.MODEL_STOP_TIMEOUT if timeout is None else timeout
    with _engine() as client:
        container = _container(client, container_id)
        if container is None:
            return
        try:
            if container.status in ("running", "restarting", "paused"):
                container.stop(timeout=timeout)
            container.remove(force=True)
        except docker.errors.NotFound:
            pass


def kill(container_id: str) -> None:
    """SIGKILL and remove at once (a failing container: nothing to shut down gracefully)."""
    with _engine() as client:
        container = _container(client, container_id)
        if container is None:
            return
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass


@dataclass(frozen=True)
class Listed:
    container_id: str
    model_id: str
    created: datetime | None


def list_model_containers(owner: str) -> list[Listed]:
    """Containers (running or not) this siestaflow (``owner`` label) started for models."""
    with _engine() as client:
        rows = client.api.containers(all=True, filters={"label": [LABEL_MODEL, f"{LABEL_OWNER}={owner}"]})
    return [Listed(row["Id"], (row.get("Labels") or {}).get(LABEL_MODEL, ""),
                   datetime.fromtimestamp(row["Created"], UTC) if row.get("Created") else None)
            for row in rows]


# --- The container's server -------------------------------------------------------------


def _timeout(timeout: float) -> urllib3.Timeout:
    return urllib3.Timeout(connect=min(CONNECT_TIMEOUT, timeout), read=timeout)


def ping(address: str, *, timeout: float = 2.0) -> Ping:
    """``GET /ping``: ok only on 200. Never raises."""
    started = time.monotonic()
    try:
        response = _HTTP.request("GET", f"http://{address}/ping", timeout=_timeout(timeout), redirect=False)
    except urllib3.exceptions.NewConnectionError as exc:  # refused (a kind of connect timeout, to urllib3)
        return Ping(False, None, None, f"/ping failed: {_reason(exc)}")
    except urllib3.exceptions.TimeoutError:
        return Ping(False, None, None, f"/ping did not answer within {timeout:g} s")
    except urllib3.exceptions.HTTPError as exc:
        return Ping(False, None, None, f"/ping failed: {_reason(exc)}")
    latency = (time.monotonic() - started) * 1000
    if response.status != 200:
        reply = Reply(response.status, response.data[:2000], response.headers.get("Content-Type", ""), latency)
        return Ping(False, response.status, latency, f"/ping answered {response.status}: {reply.message()}")
    return Ping(True, 200, latency)


def invoke(address: str, body: bytes, *, content_type: str, accept: str = "", timeout: float,
           max_bytes: int) -> Reply:
    """``POST /invocations`` with the body and its content type, whatever the server answers.

    Raises ContainerUnreachable, ContainerTimeout (no complete answer within ``timeout``
    seconds in all) or ResponseTooLarge (over ``max_bytes``).
    """
    headers = {"Content-Type": content_type or "application/octet-stream"}
    if accept:
        headers["Accept"] = accept
    started = time.monotonic()
    deadline = started + timeout
    try:
        response = _HTTP.request("POST", f"http://{address}/invocations", body=body, headers=headers,
                                 timeout=_timeout(timeout), preload_content=False, redirect=False)
        try:
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise ResponseTooLarge(f"The model's answer is {declared} bytes, over the {max_bytes} allowed.")
            chunks, size = [], 0
            for chunk in response.stream(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise ResponseTooLarge(f"The model's answer is over the {max_bytes} bytes allowed.")
                if time.monotonic() > deadline:
                    raise ContainerTimeout(f"The model did not finish answering within {timeout:g} s.")
                chunks.append(chunk)
        except BaseException:
            response.close()  # what is not read goes with its connection, never back to the pool
            raise
        response.release_conn()
    except urllib3.exceptions.NewConnectionError as exc:
        raise ContainerUnreachable(f"The model's server does not accept connections at {address}.") from exc
    except urllib3.exceptions.TimeoutError as exc:
        raise ContainerTimeout(f"The model did not answer within {timeout:g} s.") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise ContainerUnreachable(f"The model's server failed the request: {_reason(exc)}") from exc
    return Reply(response.status, b"".join(chunks), response.headers.get("Content-Type", ""),
                 (time.monotonic() - started) * 1000)
