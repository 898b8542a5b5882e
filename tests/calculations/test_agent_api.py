"""The agent API: claim, events, logs, results and files, only for the key's own cluster."""

import base64
import hashlib

import pytest
from rest_framework.test import APIClient

from calculations.models import AnalysisResult, Artifact, Calculation, LogLine, Result
from calculations.states import State

BASE = "/api/agent/v1"


def event(client, calc_id, seq, state, **extra):
    return client.post(f"{BASE}/calculations/{calc_id}/events/", {"seq": seq, "state": state, **extra}, format="json")


@pytest.fixture
def claimed(submit, agent_client):
    calc = submit(files=[("elec.TSHS", b"electrode bytes")])
    answer = agent_client.post(f"{BASE}/claim/", {"max": 1}, format="json")
    assert answer.status_code == 200, answer.content
    return calc, answer.json()["calculations"][0]


def test_it_lists_pending_calculations_without_claiming(submit, agent_client):
    calc = submit()
    listed = agent_client.get(f"{BASE}/calculations/?processed=false").json()
    assert [c["id"] for c in listed["results"]] == [calc.pk]
    assert Calculation.objects.get(pk=calc.pk).state == State.QUEUED


def test_it_hands_out_the_full_specification_on_claim(claimed):
    calc, spec = claimed
    assert spec["id"] == calc.pk and spec["engine"] == "siesta" and spec["attempt"] == 1
    assert spec["molecule"]["species"] == ["O", "H", "H"]
    assert {p["name"] for p in spec["pseudopotentials"]} == {"O.psf", "H.psf"}
    assert spec["files"] == [{"name": "elec.TSHS", "sha256": hashlib.sha256(b"electrode bytes").hexdigest(),
                              "size": 15, "url": f"{BASE}/calculations/{calc.pk}/files/elec.TSHS"}]
    calc.refresh_from_db()
    assert calc.state == State.CLAIMED and calc.processed and calc.lease_expires_at


def test_it_streams_input_files_with_their_checksum(claimed, agent_client):
    calc, spec = claimed
    response = agent_client.get(spec["files"][0]["url"])
    assert b"".join(response.streaming_content) == b"electrode bytes"
    assert response["X-Checksum-Sha256"] == spec["files"][0]["sha256"]
    pseudo = agent_client.get(f"{BASE}/calculations/{calc.pk}/files/O.psf")
    assert pseudo.status_code == 200
    assert agent_client.get(f"{BASE}/calculations/{calc.pk}/files/..%2F..%2Fsecret").status_code == 404


def test_it_applies_events_in_order_and_ignores_replays(claimed, agent_client):
    calc, _ = claimed
    assert event(agent_client, calc.pk, 1, "running", step=0).json() == {"duplicate": False, "state": "running"}
    assert event(agent_client, calc.pk, 1, "running", step=0).json()["duplicate"] is True
    progress = event(agent_client, calc.pk, 2, "running", progress={"scf_iteration": 7, "energy": -465.1})
    assert progress.status_code == 200
    calc.refresh_from_db()
    assert calc.progress == {"scf_iteration": 7, "energy": -465.1, "trend": [[7, -465.1]]} and calc.agent_seq == 2
    assert calc.events.filter(to_state="running").count() == 1


def test_it_refuses_an_illegal_transition_with_409_and_the_reason(claimed, agent_client):
    calc, _ = claimed
    response = event(agent_client, calc.pk, 1, "succeeded")
    assert response.status_code == 409
    assert "cannot go from claimed to succeeded" in response.json()["detail"]
    assert Calculation.objects.get(pk=calc.pk).state == State.CLAIMED


def test_it_records_the_failure_class_and_reason(claimed, agent_client):
    calc, _ = claimed
    event(agent_client, calc.pk, 1, "running", step=0)
    event(agent_client, calc.pk, 2, "validating", step=0)
    event(agent_client, calc.pk, 3, "failed", step=0, failure_class="scf_not_converged",
          reason="SCF_NOT_CONV after 300 iterations")
    calc.refresh_from_db()
    assert (calc.state, calc.failure_class) == (State.FAILED, "scf_not_converged")
    assert "SCF_NOT_CONV" in calc.failure_reason and calc.finished_at


def test_it_stores_log_lines_once_per_sequence_number(claimed, agent_client):
    calc, _ = claimed
    lines = {"lines": [{"seq": n, "level": "INFO", "message": f"line {n}"} for n in (1, 2, 3)]}
    for _ in range(2):
        assert agent_client.post(f"{BASE}/calculations/{calc.pk}/logs/", lines, format="json").status_code == 200
    assert list(LogLine.objects.filter(calculation=calc).values_list("message", flat=True)) == [
        "line 1", "line 2", "line 3"]


def test_it_stores_results_analyses_and_artifacts_and_replaces_on_repost(claimed, agent_client):
    calc, _ = claimed
    body = {"step": 0, "key": "extracted", "data": {"energies": {"total": -465.1}},
            "analyses": [{"name": "energy_summary", "status": "ok", "data": {"total": -465.1}}],
            "artifacts": [{"name": "scf.png", "content_type": "image/png",
                           "content_b64": base64.b64encode(b"\x89PNG fake").decode()}]}
    ids = []
    for total in (-465.1, -465.2):
        body["data"]["energies"]["total"] = total
        response = agent_client.post(f"{BASE}/calculations/{calc.pk}/results/", body, format="json")
        assert response.status_code == 201 and response.json()["acknowledged"] is True
        ids.append(response.json()["id"])
    assert ids[0] == ids[1] == Result.objects.get(calculation=calc).pk  # replaced in place
    assert Result.objects.get(calculation=calc).data["energies"]["total"] == -465.2
    assert AnalysisResult.objects.get(calculation=calc).status == "ok"
    assert Artifact.objects.get(calculation=calc).file.read() == b"\x89PNG fake"


def test_it_keeps_the_last_of_two_analyses_of_one_name(claimed, agent_client):
    calc, _ = claimed
    body = {"step": 0, "analyses": [{"name": "energy_summary", "status": "failed", "message": "first"},
                                    {"name": "energy_summary", "status": "ok", "data": {"total": -1.0}}]}
    response = agent_client.post(f"{BASE}/calculations/{calc.pk}/results/", body, format="json")
    assert response.status_code == 201, response.content
    analysis = AnalysisResult.objects.get(calculation=calc)
    assert (analysis.status, analysis.data, analysis.message) == ("ok", {"total": -1.0}, "")


@pytest.mark.parametrize("body", [
    {"step": 0, "artifacts": [{"name": "x.png", "content_b64": "not base64!!"}]},
    {"step": 0, "artifacts": [{"name": "../x.png", "content_b64": "AAAA"}]},
    {"step": -3},
    {"step": 0, "analyses": [{"name": "energy_summary", "status": "great"}]},
])
def test_it_refuses_malformed_results_and_stores_nothing(claimed, agent_client, body):
    calc, _ = claimed
    response = agent_client.post(f"{BASE}/calculations/{calc.pk}/results/", body, format="json")
    assert response.status_code == 400
    assert not Result.objects.filter(calculation=calc).exists()
    assert not Artifact.objects.filter(calculation=calc).exists()


def test_it_refuses_artifacts_over_the_size_limit(claimed, agent_client, settings):
    settings.ARTIFACT_MAX_BYTES = 1024
    calc, _ = claimed
    body = {"step": 0, "artifacts": [{"name": "big.png", "content_b64": base64.b64encode(b"x" * 2048).decode()}]}
    response = agent_client.post(f"{BASE}/calculations/{calc.pk}/results/", body, format="json")
    assert response.status_code == 400 and "over the limit" in str(response.json())


@pytest.mark.parametrize("path", ["events/", "logs/", "results/", "files/O.psf"])
def test_it_hides_other_clusters_calculations(claimed, other_agent_client, path):
    calc, _ = claimed
    method = other_agent_client.get if path.startswith("files") else other_agent_client.post
    assert method(f"{BASE}/calculations/{calc.pk}/{path}", {}, format="json").status_code == 404


def test_it_refuses_user_tokens_and_missing_keys_on_agent_routes(claimed, alice):
    user_client = APIClient()
    user_client.force_authenticate(alice)
    assert user_client.post(f"{BASE}/claim/", {}, format="json").status_code in (401, 403)
    assert APIClient().post(f"{BASE}/claim/", {}, format="json").status_code == 401


def test_it_refuses_malformed_event_payloads(claimed, agent_client):
    calc, _ = claimed
    for body in ({"seq": 0, "state": "running"}, {"seq": 1, "state": "exploded"}, {"state": "running"}):
        response = agent_client.post(f"{BASE}/calculations/{calc.pk}/events/", body, format="json")
        assert response.status_code == 400
    assert Calculation.objects.get(pk=calc.pk).agent_seq == 0


def test_it_keeps_the_energy_trend_of_the_running_scf_cycle(claimed, agent_client):
    calc, _ = claimed
    event(agent_client, calc.pk, 1, "running", step=0)
    for seq, (geometry, iteration, energy) in enumerate(
            [(0, 1, -460.0), (0, 2, -463.5), (0, 2, -463.6), (0, 3, -465.1), (1, 1, -464.9), (1, 2, -465.2)], 2):
        progress = {"step": 0, "geometry_step": geometry, "scf_iteration": iteration, "energy": energy}
        assert event(agent_client, calc.pk, seq, "running", progress=progress).status_code == 200
        calc.refresh_from_db()
        if (geometry, iteration) == (0, 3):
            assert calc.progress["trend"] == [[1, -460.0], [2, -463.6], [3, -465.1]]  # iteration 2 once
    assert calc.progress["trend"] == [[1, -464.9], [2, -465.2]]  # a new geometry step starts it again


def test_it_bounds_the_trend():
    from calculations.ingest import TREND_POINTS, with_trend

    progress = {}
    for iteration in range(1, TREND_POINTS + 20):
        progress = with_trend(progress, {"scf_iteration": iteration, "energy": -float(iteration)})
    assert len(progress["trend"]) == TREND_POINTS and progress["trend"][-1] == [TREND_POINTS + 19, -TREND_POINTS - 19.0]
    assert with_trend(progress, {"scf_iteration": 1, "energy": 0.5})["trend"] == [[1, 0.5]]  # a new cycle
    assert with_trend(None, {"energy": True})["trend"] == []  # not a number: nothing drawn
