"""The agent against a real running server: heartbeat, claim, a real PySCF run, events,
results, analyses, cleanup; a chain; a cancel that reaches the running job."""

from __future__ import annotations

import json

from calculations import services
from calculations.models import Calculation, LogLine
from clusters.models import Cluster, Heartbeat
from tests.live import pid_alive, wait_for_state, wait_until

AGENT_STATES = ["running", "validating", "extracting", "analysing", "succeeded"]


def submit(user, cluster, molecule, name, **fields) -> Calculation:
    fields.setdefault("config", {"options": {"method": "RHF", "basis": "sto-3g"}})
    return services.submit_calculation(owner=user, name=name, cluster=cluster, engine="pyscf",
                                       molecule=molecule, **fields)


def agent_story(calc) -> list[tuple[str, int | None, int]]:
    """``(state, step, seq)`` of the agent's transitions, in the order the server stored them."""
    return [(e.to_state, e.step, e.seq) for e in calc.events.filter(by_agent=True, seq__isnull=False).order_by("id")]


def test_it_marks_the_cluster_online_and_stores_the_heartbeat_metrics(live_running, live_cluster):
    cluster = Cluster.objects.get(pk=live_cluster.cluster.pk)
    wait_until(lambda: Heartbeat.objects.filter(cluster=cluster).count() >= 2, timeout=20, what="two heartbeats")

    cluster.refresh_from_db()
    point = Heartbeat.objects.filter(cluster=cluster).latest("time")
    assert cluster.is_online
    assert cluster.agent_version
    assert "pyscf" in cluster.engines
    assert "siesta" not in cluster.engines  # no siesta on this machine: not offered
    assert "energy_summary" in cluster.analyses
    assert 0 <= point.cpu_percent <= 100 and 0 < point.memory_percent <= 100
    assert point.disk_free > 0 and point.memory_used > 0 and point.load_1 is not None


def test_it_runs_a_water_calculation_created_through_the_api_to_succeeded(
        live_running, live_cluster, live_token, live_water, live_gate):
    server, agent = live_running
    status, body = server.request("POST", "/api/calculations/", token=live_token, body={
        "name": "water rhf sto-3g", "cluster": live_cluster.cluster.pk, "engine": "pyscf",
        "molecule": live_water.pk,
        "config": {"options": {"method": "RHF", "basis": "sto-3g"}},
        "analyses": ["energy_summary", "scf_convergence"]})
    assert status == 201, body
    calc = wait_for_state(Calculation.objects.get(pk=body["id"]), "succeeded", "failed")

    assert calc.state == "succeeded", calc.failure_reason
    assert [state for state, _step, _seq in agent_story(calc)] == AGENT_STATES
    seqs = [seq for _state, _step, seq in agent_story(calc)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [e.to_state for e in calc.events.order_by("id")][:3] == ["queued", "claimed", "running"]
    assert len(live_gate.starts(calc.pk)) == 1

    extracted = calc.results.get(step=0, key="extracted").data
    assert extracted["converged"] is True
    assert abs(extracted["total_energy"] - -74.963) < 0.01  # RHF/STO-3G water, Hartree
    assert extracted["n_electrons"] == 10 and len(extracted["dipole_debye"]) == 3
    analyses = {a.name: a for a in calc.analysis_results.all()}
    assert set(analyses) == {"energy_summary", "scf_convergence"}
    assert analyses["energy_summary"].status == "ok", analyses["energy_summary"].message
    assert abs(analyses["energy_summary"].data["total"] - extracted["total_energy_ev"]) < 1e-6
    assert analyses["scf_convergence"].status == "ok", analyses["scf_convergence"].message
    assert calc.artifacts.filter(name__startswith="scf_convergence").exists()

    # Raw files go only once the server has the results, and the bytes freed are reported.
    cleaned = wait_until(lambda: LogLine.objects.filter(calculation=calc, message__contains="freed").first(),
                         timeout=20, what="the cleanup report")
    stepdir = agent.work_dir / f"calc-{calc.pk}" / "attempt-1" / "step-0"
    assert not (stepdir / "scf.chk").exists()
    assert (stepdir / "results.json").exists() and (stepdir / "stdout.txt").exists()
    assert int(cleaned.message.split("freed ")[1].split()[0]) > 0
    lines = LogLine.objects.filter(calculation=calc).order_by("seq")
    assert [line.seq for line in lines] == list(range(1, lines.count() + 1))


def test_it_runs_a_two_step_chain_in_order_carrying_the_checkpoint(live_running, live_cluster, live_user, live_water,
                                                                   live_gate):
    _server, agent = live_running
    calc = submit(live_user, live_cluster.cluster, live_water, "water basis chain",
                  chain={"parameter": "basis", "values": ["sto-3g", "6-31g"], "carry": ["scf.chk"]})
    calc = wait_for_state(calc, "succeeded", "failed", timeout=90)

    assert calc.state == "succeeded", calc.failure_reason
    story = agent_story(calc)
    assert [(state, step) for state, step, _seq in story] == [
        ("running", 0), ("validating", 0), ("extracting", 0),
        ("running", 1), ("validating", 1), ("extracting", 1), ("succeeded", 1)]
    starts = [folder.name for folder, _pid in live_gate.starts(calc.pk)]
    assert starts == ["step-0", "step-1"]
    results = {r.step: r.data for r in calc.results.filter(key="extracted")}
    assert (results[0]["basis"], results[1]["basis"]) == ("sto-3g", "6-31g")
    assert results[1]["total_energy"] < results[0]["total_energy"]  # the larger basis, variationally lower
    carried = json.loads((agent.work_dir / f"calc-{calc.pk}" / "attempt-1" / "step-1" / "carried.json").read_text())
    assert "scf.chk" in carried


def test_it_terminates_a_running_calculation_cancelled_by_its_user(live_running, live_cluster, live_user, live_water,
                                                                   live_gate):
    live_gate.hold()
    calc = submit(live_user, live_cluster.cluster, live_water, "water to cancel")
    wait_for_state(calc, "running")
    (_folder, pid), = wait_until(lambda: live_gate.starts(calc.pk), what="the job to start")
    assert pid_alive(pid)

    services.cancel(actor=live_user, calc=calc)
    calc = wait_for_state(calc, "cancelled", timeout=30)

    wait_until(lambda: not pid_alive(pid), timeout=15, what="the job's process to end")
    assert calc.events.filter(to_state="cancelled", by_agent=True).count() == 1
    assert not calc.results.exists()
    live_gate.release()
    assert len(live_gate.starts(calc.pk)) == 1
