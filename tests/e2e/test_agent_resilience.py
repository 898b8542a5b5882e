"""Outages and restarts, for real: the server killed mid-run, the agent stopped mid-run."""

from __future__ import annotations

import re
import signal

import pytest

from calculations.models import LogLine
from tests.e2e.test_agent_end_to_end import submit
from tests.live import pid_alive, wait_for_state, wait_until


def state_changes(events: list[dict]) -> list[tuple[int, str]]:
    """``(seq, state)`` of the outbox events that change the state (progress repeats it)."""
    changes, previous = [], "claimed"
    for event in events:
        if event["state"] != previous:
            changes.append((event["seq"], event["state"]))
        previous = event["state"]
    return changes


@pytest.mark.slow
def test_it_delivers_every_report_once_after_the_server_was_down_mid_run(live_running, live_cluster, live_user,
                                                                         live_water, live_gate):
    server, agent = live_running
    live_gate.hold()
    calc = submit(live_user, live_cluster.cluster, live_water, "water through an outage",
                  analyses=["energy_summary"])
    wait_for_state(calc, "running")
    (stepdir, pid), = wait_until(lambda: live_gate.starts(calc.pk), what="the job to start")

    server.kill()
    live_gate.release()
    # The calculation goes on without the server; everything it reports waits in the outbox.
    wait_until(lambda: [e for e in agent.outbox_entries(calc.pk, "event", "pending") if e["state"] == "succeeded"],
               timeout=60, what="the run to finish during the outage")
    assert not pid_alive(pid) and (stepdir / "results.json").exists()
    waiting = {kind for (kind,) in agent.outbox(
        "SELECT DISTINCT kind FROM entries WHERE calc_id=? AND status='pending'", calc.pk)}
    assert waiting == {"event", "log", "result"}
    assert (stepdir / "scf.chk").exists()  # nothing is deleted before the server has the results
    calc.refresh_from_db()
    assert calc.state == "running"

    server.start()
    calc = wait_for_state(calc, "succeeded", "failed")
    assert calc.state == "succeeded", calc.failure_reason
    wait_until(lambda: not (stepdir / "scf.chk").exists(), timeout=20, what="the cleanup after the outage")
    # the cleanup's log line goes with the agent's next report: wait until it is written and delivered
    wait_until(lambda: any(e["message"].startswith("cleanup of step") for e in agent.outbox_entries(calc.pk, "log"))
               and agent.pending(calc.pk) == 0, timeout=30, what="the outbox to empty after the cleanup")

    events = agent.outbox_entries(calc.pk, "event")
    stored = [(e.seq, e.to_state) for e in calc.events.filter(by_agent=True, seq__isnull=False).order_by("id")]
    assert stored == state_changes(events)
    assert [state for _seq, state in stored] == ["running", "validating", "extracting", "analysing", "succeeded"]
    assert calc.agent_seq == events[-1]["seq"] == len(events)
    logs = agent.outbox_entries(calc.pk, "log")
    lines = LogLine.objects.filter(calculation=calc).order_by("seq")
    assert [(line.seq, line.message) for line in lines] == [(e["seq"], e["message"]) for e in logs]
    assert sorted(calc.results.values_list("step", "key")) == [(0, "analyses"), (0, "extracted")]
    assert calc.analysis_results.get(name="energy_summary").status == "ok"
    assert len(live_gate.starts(calc.pk)) == 1


@pytest.mark.slow
def test_it_reattaches_after_an_agent_restart_and_never_runs_a_calculation_twice(live_running, live_cluster, live_user,
                                                                                 live_water, live_gate):
    _server, agent = live_running
    live_gate.hold()
    calc = submit(live_user, live_cluster.cluster, live_water, "water through an agent restart")
    wait_for_state(calc, "running")
    (stepdir, pid), = wait_until(lambda: live_gate.starts(calc.pk), what="the job to start")

    assert agent.stop(signal.SIGTERM) == 0
    assert pid_alive(pid)  # stopping the agent leaves its jobs running
    restarts = len(re.findall(r"re-attaching to [1-9]\d* run", agent.output()))
    agent.start()
    assert len(re.findall(r"re-attaching to [1-9]\d* run", agent.output())) == restarts + 1
    live_gate.release()
    calc = wait_for_state(calc, "succeeded", "failed")

    assert calc.state == "succeeded", calc.failure_reason
    assert calc.attempt == 1
    assert live_gate.starts(calc.pk) == [(stepdir, pid)]
    assert [p.name for p in (agent.work_dir / f"calc-{calc.pk}").iterdir()] == ["attempt-1"]
    assert sorted(p.name for p in stepdir.parent.glob("step-*")) == ["step-0"]
    assert calc.events.filter(to_state="running").count() == 1
    assert LogLine.objects.filter(calculation=calc, message__contains="submitted").count() == 1
    assert calc.results.get(step=0, key="extracted").data["converged"] is True
