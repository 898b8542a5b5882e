"""The outbox: order, durability across a reopened database, no duplicates, failure handling."""

from __future__ import annotations

from typing import Any

import pytest
from siestaflow_agent import outbox
from siestaflow_agent.client import ApiError, AuthError, TransientError
from siestaflow_agent.outbox import DELIVERED, PENDING, REJECTED, Outbox


class RecordingClient:
    """Records what the outbox sends one report at a time; ``fail`` maps a call number
    (1-based) to an exception. Its ``reports/`` answers 404, as a server older than that
    route: the outbox falls back to one request per report."""

    def __init__(self, fail: dict[int, Exception] | None = None) -> None:
        self.sent: list[tuple[str, int, Any]] = []
        self.fail = fail or {}
        self.calls = 0
        self.batch_calls = 0

    def post_reports(self, reports):
        self.batch_calls += 1
        raise ApiError("POST reports/: 404 Not found.", status=404, detail="Not found.")

    def _call(self, kind: str, calc_id: int, body: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls in self.fail:
            raise self.fail[self.calls]
        self.sent.append((kind, calc_id, body))
        return {"ok": True}

    def post_event(self, calc_id, body):
        return self._call("event", calc_id, body)

    def post_logs(self, calc_id, lines, attempt=None):
        return self._call("logs", calc_id, lines)

    def post_results(self, calc_id, body):
        return self._call("result", calc_id, body)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "outbox.sqlite3"


def test_it_numbers_events_per_calculation_and_attempt(path):
    box = Outbox(path)
    assert [box.add_event(1, 1, {"state": s}).seq for s in ("running", "validating")] == [1, 2]
    assert box.add_event(2, 1, {"state": "running"}).seq == 1
    assert box.add_event(1, 2, {"state": "running"}).seq == 1
    assert box.add_log(1, 1, "hello").seq == 1  # logs count separately from events


def test_it_delivers_in_write_order_and_batches_consecutive_log_lines(path):
    box = Outbox(path)
    box.add_event(1, 1, {"state": "running"})
    box.add_log(1, 1, "a")
    box.add_log(1, 1, "b")
    box.add_event(1, 1, {"state": "validating"})
    box.add_result(1, 1, {"step": 0, "key": "extracted", "data": {}})
    client = RecordingClient()
    assert box.flush(client) == 5
    assert client.batch_calls == 1  # tried reports/ first
    assert [kind for kind, _, _ in client.sent] == ["event", "logs", "event", "result"]
    assert [line["message"] for line in client.sent[1][2]] == ["a", "b"]
    assert [line["seq"] for line in client.sent[1][2]] == [1, 2]
    assert box.pending() == []


def test_it_keeps_entries_across_a_reopened_database_and_never_resends_delivered_ones(path):
    box = Outbox(path)
    first = box.add_event(7, 1, {"state": "running"})
    box.flush(RecordingClient())
    box.add_event(7, 1, {"state": "validating"})
    box.close()  # the agent stops with one entry undelivered

    reopened = Outbox(path)
    client = RecordingClient()
    assert reopened.flush(client) == 1
    assert [body["seq"] for _, _, body in client.sent] == [2]  # seq 1 was delivered before
    assert reopened.status(first.id) == DELIVERED
    assert reopened.add_event(7, 1, {"state": "extracting"}).seq == 3  # numbering continues


def test_a_transient_failure_stops_the_flush_and_the_retry_resumes_in_order(path):
    box = Outbox(path)
    for state in ("running", "validating", "extracting"):
        box.add_event(1, 1, {"state": state})
    client = RecordingClient(fail={2: TransientError("503", status=503)})
    assert box.flush(client) == 1
    assert box.flush(client) == 2
    assert [body["seq"] for _, _, body in client.sent] == [1, 2, 3]


def test_a_rejected_key_keeps_everything_pending(path):
    box = Outbox(path)
    entry = box.add_event(1, 1, {"state": "running"})
    assert box.flush(RecordingClient(fail={1: AuthError("401", status=401)})) == 0
    assert box.status(entry.id) == PENDING


def test_a_refused_entry_is_rejected_for_good_without_blocking_the_rest(path):
    box = Outbox(path)
    bad = box.add_event(1, 1, {"state": "nonsense"})
    good = box.add_event(1, 1, {"state": "running"})
    client = RecordingClient(fail={1: ApiError("409", status=409, detail="illegal")})
    assert box.flush(client) == 1
    assert (box.status(bad.id), box.status(good.id)) == (REJECTED, DELIVERED)
    assert box.flush(client) == 0  # the rejected one is not retried


def test_a_server_error_holds_back_that_calculation_only(path):
    box = Outbox(path)
    box.add_event(1, 1, {"state": "running"})
    box.add_event(1, 1, {"state": "validating"})
    other = box.add_event(2, 1, {"state": "running"})
    client = RecordingClient(fail={1: ApiError("500", status=500)})
    assert box.flush(client) == 1
    assert box.status(other.id) == DELIVERED
    assert [e.body["seq"] for e in box.pending(1, 1)] == [1, 2]  # order of calculation 1 kept


def test_a_dedupe_key_stores_a_report_once(path):
    box = Outbox(path)
    first = box.add_event(1, 1, {"state": "running"}, dedupe="running:0")
    again = box.add_event(1, 1, {"state": "running"}, dedupe="running:0")
    assert again.id == first.id and again.seq == 1
    assert len(box.entries(1, 1, "event")) == 1


def test_discard_rejects_the_pending_entries_of_a_stale_attempt(path):
    box = Outbox(path)
    stale = box.add_event(1, 1, {"state": "running"})
    current = box.add_event(1, 2, {"state": "running"})
    assert box.discard(1, 1, "superseded") == 1
    client = RecordingClient()
    box.flush(client)
    assert box.status(stale.id) == REJECTED and box.status(current.id) == DELIVERED
    assert len(client.sent) == 1


class BatchingClient:
    """A server with ``reports/``: records each request's reports and answers each report
    with the status ``statuses`` gives for its number (1-based, over all reports; 200 when
    not given), or raises ``fail`` for a request number."""

    def __init__(self, statuses: dict[int, int] | None = None, fail: dict[int, Exception] | None = None) -> None:
        self.requests: list[list[dict[str, Any]]] = []
        self.statuses = statuses or {}
        self.fail = fail or {}
        self.reports = 0

    def post_reports(self, reports):
        if len(self.requests) + 1 in self.fail:
            self.requests.append([])
            raise self.fail[len(self.requests)]
        self.requests.append(reports)
        answers = []
        for _ in reports:
            self.reports += 1
            code = self.statuses.get(self.reports, 200)
            answers.append({"status": code, "body": {"detail": "refused"} if code >= 400 else {"ok": True}})
        return answers

    def _single(self, calc_id, body, attempt=None):  # a lone report goes to its own route
        self.requests.append([{"calculation": calc_id, "body": body}])
        return {"ok": True}

    post_event = post_logs = post_results = _single


def test_it_sends_the_pending_reports_in_one_request_in_write_order(path):
    box = Outbox(path)
    box.add_event(1, 1, {"state": "running"})
    box.add_log(1, 1, "a")
    box.add_log(1, 1, "b")
    box.add_event(2, 1, {"state": "running"})
    box.add_result(1, 1, {"step": 0, "key": "extracted", "data": {}})
    client = BatchingClient()
    assert box.flush(client) == 5 and box.pending() == []
    (reports,) = client.requests
    assert [(r["calculation"], r["kind"]) for r in reports] == [(1, "event"), (1, "logs"), (2, "event"),
                                                                (1, "results")]
    assert [line["message"] for line in reports[1]["body"]["lines"]] == ["a", "b"]
    assert reports[0]["body"] == {"seq": 1, "state": "running", "attempt": 1}
    assert reports[1]["body"]["attempt"] == 1  # every report says its attempt


def test_a_refused_report_in_a_batch_is_rejected_alone(path):
    box = Outbox(path)
    bad = box.add_event(1, 1, {"state": "nonsense"})
    good = box.add_event(1, 1, {"state": "running"})
    assert box.flush(BatchingClient(statuses={1: 409})) == 1
    assert (box.status(bad.id), box.status(good.id)) == (REJECTED, DELIVERED)


def test_a_server_error_on_a_report_holds_back_the_rest_of_that_calculation(path):
    box = Outbox(path)
    box.add_event(1, 1, {"state": "running"})
    held = box.add_event(1, 1, {"state": "validating"})
    other = box.add_event(2, 1, {"state": "running"})
    assert box.flush(BatchingClient(statuses={1: 500})) == 1
    assert (box.status(held.id), box.status(other.id)) == (PENDING, DELIVERED)
    assert [e.body["seq"] for e in box.pending(1, 1)] == [1, 2]


def test_a_transient_failure_of_a_batch_keeps_every_report_pending(path):
    box = Outbox(path)
    for state in ("running", "validating"):
        box.add_event(1, 1, {"state": state})
    client = BatchingClient(fail={1: TransientError("503", status=503)})
    assert box.flush(client) == 0 and len(box.pending()) == 2
    assert box.flush(client) == 2 and box.pending() == []


def test_it_splits_batches_by_count_and_sends_a_large_report_alone(path, monkeypatch):
    monkeypatch.setattr(outbox, "MAX_REPORTS", 3)
    box = Outbox(path)
    for n in range(5):
        box.add_event(n + 1, 1, {"state": "running"})
    box.add_result(9, 1, {"step": 0, "key": "extracted", "data": {"blob": "x" * outbox.MAX_REPORT_BYTES}})
    box.add_event(10, 1, {"state": "running"})
    client = BatchingClient()
    assert box.flush(client) == 7
    assert [len(r) for r in client.requests] == [3, 2, 1, 1]
