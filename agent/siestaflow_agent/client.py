"""The only HTTP code of the agent: a small client of the server's agent API (``docs/agent-api.md``).

Plain methods, one per endpoint. Transient failures (connection errors, timeouts, 429, 502,
503, 504) are retried a few times with exponential backoff and jitter, then raised as
:class:`TransientError`; longer outages are the outbox's business. Other answers raise
:class:`ApiError` carrying the status and the server's ``detail``.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from siestaflow_agent import __version__

API_PREFIX = "/api/agent/v1/"
TRANSIENT_STATUS = {429, 502, 503, 504}
CHUNK = 1 << 20


class ApiError(Exception):
    """The server refused a request. ``status`` is ``None`` when it never answered."""

    def __init__(self, message: str, *, status: int | None = None, detail: str = "",
                 errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.errors = errors or {}


class TransientError(ApiError):
    """The server was unreachable or overloaded; the same request may succeed later."""


class AuthError(ApiError):
    """The API key was rejected (401/403): the operator has to fix the key."""


class ChecksumError(ApiError):
    """A downloaded file does not match its announced SHA-256."""


class Client:
    """A session bound to one server and cluster key."""

    def __init__(self, api_url: str, api_key: str, *, timeout: float = 30.0, retries: int = 3,
                 backoff: float = 0.5, stop: threading.Event | None = None,
                 session: requests.Session | None = None) -> None:
        self.base = _api_base(api_url)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.stop = stop or threading.Event()
        self.session = session or requests.Session()
        self.session.headers.update({
            "Authorization": f"Api-Key {api_key}",
            "User-Agent": f"siestaflow-agent/{__version__}",
            "Accept": "application/json",
        })

    def heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``POST heartbeat/``: report the cluster's state; answers cancel ids and settings."""
        return self._json("POST", "heartbeat/", json=payload)

    def list_pending(self) -> list[dict[str, Any]]:
        """``GET calculations/?processed=false``: waiting calculations (not claimed)."""
        answer = self._json("GET", "calculations/", params={"processed": "false"})
        return answer if isinstance(answer, list) else answer.get("results", [])

    def claim(self, max: int, wait: int = 0) -> list[dict[str, Any]]:  # noqa: A002 - the API's name
        """``POST claim/``: claim up to ``max`` calculations, long-polling up to ``wait`` s.

        Never retried here: a lost answer must not turn into a second claim (the server's
        lease expiry recovers the first one); the agent's next tick simply claims again.
        """
        body = {"max": max, "wait": wait}
        answer = self._json("POST", "claim/", json=body, timeout=self.timeout + wait, idempotent=False)
        return answer.get("calculations", [])

    def post_event(self, calc_id: int, event: dict[str, Any]) -> dict[str, Any]:
        """``POST calculations/{id}/events/`` (safe to replay: the server dedupes on ``seq``)."""
        return self._json("POST", f"calculations/{int(calc_id)}/events/", json=event)

    def post_logs(self, calc_id: int, lines: list[dict[str, Any]], attempt: int | None = None) -> dict[str, Any]:
        """``POST calculations/{id}/logs/`` (safe to replay: lines are stored once per ``seq``)."""
        body = {"lines": lines, **({"attempt": attempt} if attempt is not None else {})}
        return self._json("POST", f"calculations/{int(calc_id)}/logs/", json=body)

    def post_results(self, calc_id: int, result: dict[str, Any]) -> dict[str, Any]:
        """``POST calculations/{id}/results/`` (safe to replay: ``(step, key)`` is replaced)."""
        return self._json("POST", f"calculations/{int(calc_id)}/results/", json=result)

    def post_reports(self, reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``POST reports/``: several events, log batches and results (``{"calculation",
        "kind", "body"}``) in one request and one transaction on the server. Answers one
        ``{"status", "body"}`` per report, in order (safe to replay, as each route is)."""
        return self._json("POST", "reports/", json={"reports": reports}).get("answers", [])

    def download_file(self, url: str, dest: Path, sha256: str | None = None) -> str:
        """Stream the file at ``url`` (a path on this server) to ``dest``; return its SHA-256.

        The digest is checked against ``sha256`` and the ``X-Checksum-Sha256`` header;
        ``dest`` only appears once the file is complete and correct.
        """
        full = self._url(url)
        response = self._send("GET", full, stream=True, timeout=self.timeout)
        tmp = dest.with_name(dest.name + ".part")
        digest = hashlib.sha256()
        try:
            with response, tmp.open("wb") as fh:
                for chunk in response.iter_content(CHUNK):
                    fh.write(chunk)
                    digest.update(chunk)
        except requests.RequestException as exc:
            tmp.unlink(missing_ok=True)
            raise TransientError(f"GET {full}: download interrupted: {exc}") from exc
        actual = digest.hexdigest()
        for expected in (sha256, response.headers.get("X-Checksum-Sha256")):
            if expected and expected.lower() != actual:
                tmp.unlink(missing_ok=True)
                raise ChecksumError(f"{dest.name}: SHA-256 {actual} does not match {expected}")
        os.replace(tmp, dest)
        return actual

    def _url(self, path: str) -> str:
        """Absolute URL for an API path; refuses other hosts (the key must not leak)."""
        full = urljoin(self.base, path)
        if urlsplit(full)[:2] != urlsplit(self.base)[:2]:
            raise ApiError(f"refusing to fetch {path!r}: not on {self.base}")
        return full

    def _json(self, method: str, path: str, *, timeout: float | None = None,
              idempotent: bool = True, **kwargs: Any) -> Any:
        response = self._send(method, self._url(path), timeout=timeout or self.timeout,
                              idempotent=idempotent, **kwargs)
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise TransientError(f"{method} {path}: answer is not JSON", status=response.status_code) from None

    def _send(self, method: str, url: str, *, idempotent: bool = True, **kwargs: Any) -> requests.Response:
        """One request with retries for transient failures; raises unless the answer is 2xx."""
        retries = self.retries if idempotent else 0
        for attempt in range(retries + 1):
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.RequestException as exc:
                error: ApiError = TransientError(f"{method} {url}: {exc}")
            else:
                if response.ok:
                    return response
                error = _error(method, url, response)
                if not isinstance(error, TransientError):
                    raise error
            if attempt == retries or self.stop.wait(self._delay(attempt)):
                raise error
        raise AssertionError("unreachable")

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        return random.uniform(0, self.backoff * 2**attempt)


def _api_base(api_url: str) -> str:
    """``https://host`` or ``https://host/api/agent/v1`` → ``https://host/api/agent/v1/``."""
    base = api_url.rstrip("/")
    if not base.endswith(API_PREFIX.rstrip("/")):
        base += API_PREFIX.rstrip("/")
    return base + "/"


def _error(method: str, url: str, response: requests.Response) -> ApiError:
    """The exception for a non-2xx answer, with the server's ``detail`` if it sent one."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    detail = str(body.get("detail", "")) or response.reason or ""
    message = f"{method} {url}: {response.status_code} {detail}".strip()
    kind = ApiError
    if response.status_code in TRANSIENT_STATUS:
        kind = TransientError
    elif response.status_code in (401, 403):
        kind = AuthError
    return kind(message, status=response.status_code, detail=detail, errors=body.get("errors"))
