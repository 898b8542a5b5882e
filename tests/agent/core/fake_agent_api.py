"""TEST DOUBLE of the siestaflow server's agent API (``docs/agent-api.md``), in-process.

A real HTTP server (``http.server`` in a thread) that follows the contract: API-key
authentication (401), calculations of other clusters (404), heartbeat with cancel ids and
settings, ``GET calculations/?processed=false``, atomic claim with long polling, ``reports/``
(several reports in one request, each answered as its route answers it), events with
``seq`` replay detection (a high-water mark per attempt, as the server keeps it) and the
server's transition table (409), logs stored once per
``(calculation, attempt, seq)``, results replaced per ``(step, key)`` (413 above a size),
and file downloads with ``X-Checksum-Sha256``. It records everything it was sent, and can
simulate outages: answering 503, or refusing connections (socket closed) until it comes back.

It is not the Django server: the real server's tests come with it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The server's table (calculations/states.py), for the states an agent reports.
TRANSITIONS = {
    "claimed": {"running", "failed", "cancelled"},
    "running": {"validating", "failed", "cancelled"},
    "validating": {"extracting", "failed", "cancelled"},
    "extracting": {"running", "analysing", "succeeded", "failed", "cancelled"},
    "analysing": {"succeeded", "failed", "cancelled"},
    "succeeded": set(), "failed": set(), "cancelled": set(), "queued": set(),
}
PREFIX = "/api/agent/v1/"
STALE = 409, {"detail": "That attempt is over: the calculation runs a newer one."}


class FakeAgentApi:
    """The fake server; ``url`` is its base (``http://127.0.0.1:PORT``)."""

    def __init__(self, key: str = "test-key", *, max_result_bytes: int = 5 << 20) -> None:
        self.key = key
        self.max_result_bytes = max_result_bytes
        self.lock = threading.Condition()
        self.calcs: dict[int, dict[str, Any]] = {}
        self.files: dict[tuple[int, str], bytes] = {}
        self.heartbeats: list[dict[str, Any]] = []
        self.claims: list[dict[str, Any]] = []
        self.events: dict[int, list[dict[str, Any]]] = {}
        self.duplicates: list[tuple[int, int]] = []
        self.conflicts: list[tuple[int, dict[str, Any]]] = []
        self.logs: dict[int, dict[int, dict[str, Any]]] = {}
        self.results: dict[tuple[int, int | None, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.batches: list[int] = []  # the number of reports of each reports/ request
        self.cancel_ids: set[int] = set()
        self.settings = {"enabled": True, "heartbeat_interval": 10, "max_concurrent": 4}
        self.mode: str | None = None  # None | "503"
        self.port = 0
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeAgentApi:
        fake = self

        class Handler(_Handler):
            api = fake

        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the socket: connections are refused until :meth:`start` again (same port)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    # -- test set-up ------------------------------------------------------------------

    def add_calculation(self, spec: dict[str, Any], *, cluster: str = "mine") -> None:
        spec = {"attempt": 1, "start_step": 0, "chain": None, "files": [], "pseudopotentials": [],
                "analyses": [], "molecule": None, **spec}
        with self.lock:
            self.calcs[spec["id"]] = {"spec": spec, "state": "queued", "cluster": cluster, "processed": False,
                                      "agent_seq": 0}
            self.lock.notify_all()

    def add_file(self, calc_id: int, name: str, content: bytes) -> dict[str, Any]:
        self.files[(calc_id, name)] = content
        return {"name": name, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content),
                "url": f"{PREFIX}calculations/{calc_id}/files/{name}"}

    def request_cancel(self, calc_id: int) -> None:
        with self.lock:
            self.cancel_ids.add(calc_id)

    def state_of(self, calc_id: int) -> str:
        with self.lock:
            return self.calcs[calc_id]["state"]

    def states(self, calc_id: int) -> list[str]:
        """The states of the accepted events, in arrival order (progress repeats included)."""
        with self.lock:
            return [e["state"] for e in self.events.get(calc_id, [])]

    def seqs(self, calc_id: int) -> list[int]:
        with self.lock:
            return [e["seq"] for e in self.events.get(calc_id, [])]

    def log_messages(self, calc_id: int) -> list[str]:
        with self.lock:
            lines = self.logs.get(calc_id, {})
            return [lines[seq]["message"] for seq in sorted(lines)]

    # -- endpoints (called by the handler with the lock held) ----------------------------

    def heartbeat(self, body: dict[str, Any]) -> tuple[int, Any]:
        self.heartbeats.append(body)
        cancel = sorted(i for i in self.cancel_ids if self.calcs[i]["state"] not in ("succeeded", "failed",
                                                                                       "cancelled"))
        return 200, {"cancel": cancel, "settings": dict(self.settings), "server_time": _now()}

    def pending(self) -> tuple[int, Any]:
        return 200, [{"id": c["spec"]["id"], "name": c["spec"].get("name", ""), "engine": c["spec"]["engine"],
                      "priority": 0, "created_at": _now()} for c in self._queued()]

    def claim(self, body: dict[str, Any]) -> tuple[int, Any]:
        deadline = time.monotonic() + min(float(body.get("wait") or 0), 30)
        while not self._queued() and time.monotonic() < deadline:
            self.lock.wait(deadline - time.monotonic())
        taken = self._queued()[: int(body.get("max", 1))]
        for calc in taken:
            calc.update(state="claimed", processed=True)
        self.claims.append({"max": body.get("max"), "ids": [c["spec"]["id"] for c in taken]})
        return 200, {"calculations": [c["spec"] for c in taken]}

    def event(self, calc: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        if self.stale(calc, body):
            return STALE
        calc_id, seq = calc["spec"]["id"], body.get("seq")
        if not isinstance(seq, int) or seq < 1:
            return 400, {"detail": "seq must be a positive integer", "errors": {"seq": ["invalid"]}}
        if seq <= calc["agent_seq"]:  # like the server: a high-water mark per attempt, not a set
            self.duplicates.append((calc_id, seq))
            return 200, {"duplicate": True, "state": calc["state"]}
        state = body.get("state")
        if state != calc["state"] and state not in TRANSITIONS.get(calc["state"], set()):
            self.conflicts.append((calc_id, body))
            return 409, {"detail": f"A calculation cannot go from {calc['state']} to {state}."}
        calc["agent_seq"] = seq
        calc["state"] = state
        self.events.setdefault(calc_id, []).append(body)
        return 200, {"duplicate": False, "state": state}

    def log_lines(self, calc: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        if self.stale(calc, body):
            return STALE
        store = self.logs.setdefault(calc["spec"]["id"], {})
        for line in body.get("lines", []):
            store.setdefault(line["seq"], line)
        return 200, {"accepted": len(body.get("lines", []))}

    def result(self, calc: dict[str, Any], body: dict[str, Any], size: int) -> tuple[int, Any]:
        if self.stale(calc, body):
            return STALE
        if size > self.max_result_bytes:
            return 413, {"detail": "result too large"}
        key = (calc["spec"]["id"], body.get("step"), body.get("key"))
        self.results[key] = body
        return 201, {"id": len(self.results), "acknowledged": True}

    def reports(self, body: dict[str, Any]) -> tuple[int, Any]:
        """Each report answered as its own route answers it, in order."""
        reports = body.get("reports")
        if not isinstance(reports, list) or not reports:
            return 400, {"detail": "Invalid request: see errors.", "errors": {"reports": ["required"]}}
        self.batches.append(len(reports))
        answers = []
        for report in reports:
            calc = self.calcs.get(report.get("calculation"))
            if calc is None or calc["cluster"] != "mine":
                code, answer = 404, {"detail": "Not found."}
            elif report.get("kind") == "results":
                code, answer = self.result(calc, report["body"], len(json.dumps(report["body"])))
            else:
                handler = {"event": self.event, "logs": self.log_lines}[report["kind"]]
                code, answer = handler(calc, report["body"])
            answers.append({"status": code, "body": answer})
        return 200, {"answers": answers}

    @staticmethod
    def stale(calc: dict[str, Any], body: dict[str, Any]) -> bool:
        """A report of an attempt that is over (the server refuses it with 409)."""
        return body.get("attempt") not in (None, calc["spec"]["attempt"])

    def _queued(self) -> list[dict[str, Any]]:
        return [c for c in self.calcs.values() if c["state"] == "queued" and c["cluster"] == "mine"]


class _Handler(BaseHTTPRequestHandler):
    api: FakeAgentApi
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        status, body = self._route(method, path, raw)
        self.api.requests.append((method, path, status))
        if isinstance(body, bytes):
            self._reply(status, body, {"Content-Type": "application/octet-stream",
                                       "X-Checksum-Sha256": hashlib.sha256(body).hexdigest()})
        else:
            self._reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _route(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        api = self.api
        if api.mode == "503":
            return 503, {"detail": "Service unavailable"}
        if self.headers.get("Authorization") != f"Api-Key {api.key}":
            return 401, {"detail": "Invalid API key."}
        if not path.startswith(PREFIX):
            return 404, {"detail": "Not found."}
        rest = path[len(PREFIX):]
        body = json.loads(raw) if raw else {}
        with api.lock:
            if (method, rest) == ("POST", "heartbeat/"):
                return api.heartbeat(body)
            if (method, rest) == ("GET", "calculations/"):
                return api.pending()
            if (method, rest) == ("POST", "claim/"):
                return api.claim(body)
            if (method, rest) == ("POST", "reports/"):
                return api.reports(body)
            match = re.fullmatch(r"calculations/(\d+)/(events|logs|results)/|calculations/(\d+)/files/([^/]+)", rest)
            calc_id = int(match.group(1) or match.group(3)) if match else None
            calc = api.calcs.get(calc_id)
            if not match or calc is None or calc["cluster"] != "mine":
                return 404, {"detail": "Not found."}
            if match.group(4) and method == "GET":
                content = api.files.get((calc_id, match.group(4)))
                return (200, content) if content is not None else (404, {"detail": "Not found."})
            handler = {"events": api.event, "logs": api.log_lines}.get(match.group(2))
            if handler is not None and method == "POST":
                return handler(calc, body)
            if match.group(2) == "results" and method == "POST":
                return api.result(calc, body, len(raw))
        return 405, {"detail": "Method not allowed."}

    def _reply(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
