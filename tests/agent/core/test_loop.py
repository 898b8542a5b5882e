"""The agent loop against the fake API server, with the real local executor and a real program."""

from __future__ import annotations

import dataclasses
import json
import threading

import psutil
import pytest
from siestaflow_agent.state import StateStore, WorkDirLockedError

from .conftest import run_to_end, runs_of, tick_until, toy_spec, wait_for


def distinct(states: list[str]) -> list[str]:
    """States without the repeats of progress-only events."""
    return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]


def step_dir(agent, calc_id, step, attempt=1):
    return agent.workspace.step_dir(calc_id, attempt, step)


def test_it_claims_runs_reports_in_order_and_cleans_up_after_the_ack(api, make_agent, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path, sleep=0.6))
    agent = make_agent()
    tick_until(agent, lambda: api.state_of(1) == "succeeded")
    tick_until(agent, lambda: not agent.state.open_runs())

    assert distinct(api.states(1)) == ["running", "validating", "extracting", "succeeded"]
    assert api.seqs(1) == list(range(1, len(api.seqs(1)) + 1)) and api.duplicates == []
    progress = [e["progress"] for e in api.events[1] if e["state"] == "running"]
    assert progress[0] == {"step": 0, "steps": 1} and any("scf_iteration" in p for p in progress[1:])
    result = api.results[(1, 0, "extracted")]
    assert result["data"] == {"energy": -4.5, "carried": None, "x": 1.5}
    folder = step_dir(agent, 1, 0)
    assert not (folder / "scratch.bin").exists()  # raw file deleted after the acknowledgement
    assert (folder / "results.json").exists() and (folder / "stdout.txt").exists()
    assert any("freed 65536 bytes" in m for m in api.log_messages(1))
    assert len(runs_of(tmp_path)) == 1
    assert api.batches and max(api.batches) > 1  # several reports of a tick went in one request


def test_raw_files_stay_until_the_server_acknowledged_the_results(api, make_agent, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path))
    agent = make_agent()
    tick_until(agent, lambda: agent.state.open_runs())  # claimed
    api.mode = "503"
    tick_until(agent, lambda: agent.state.open_runs()[0].final == "succeeded")
    for _ in range(3):
        agent.tick()
    assert (step_dir(agent, 1, 0) / "scratch.bin").exists()
    assert (1, 0, "extracted") not in api.results and agent.outbox.pending(1, 1)
    assert api.state_of(1) == "running"  # only the first event got through before the outage

    api.mode = None
    tick_until(agent, lambda: not agent.state.open_runs())
    assert not (step_dir(agent, 1, 0) / "scratch.bin").exists()
    assert distinct(api.states(1)) == ["running", "validating", "extracting", "succeeded"]


@pytest.mark.parametrize("outage", ["503", "refused"])
def test_an_outage_delays_reports_without_losing_or_duplicating_them(api, make_agent, tmp_path, outage):
    api.add_calculation(toy_spec(1, tmp_path, values=[0, 1], carry=["*.restart"], sleep=0.3))
    agent = make_agent()
    tick_until(agent, lambda: "running" in api.states(1))
    if outage == "503":
        api.mode = "503"
    else:
        api.stop()
    tick_until(agent, lambda: agent.state.open_runs()[0].final is not None)
    if outage == "503":
        api.mode = None
    else:
        api.start()
    tick_until(agent, lambda: not agent.state.open_runs())

    assert api.duplicates == [] and api.conflicts == []
    assert api.seqs(1) == list(range(1, len(api.seqs(1)) + 1))
    assert distinct(api.states(1)) == ["running", "validating", "extracting"] * 2 + ["succeeded"]
    assert [e["step"] for e in api.events[1] if e["state"] == "validating"] == [0, 1]
    assert sorted(api.logs[1]) == list(range(1, len(api.logs[1]) + 1))  # every log line, once
    assert {(1, 0, "extracted"), (1, 1, "extracted")} <= set(api.results)


def test_a_chain_carries_files_to_the_next_step_with_checksums(api, make_agent, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path, values=[0, 1, 2], carry=["*.restart"]))
    agent = make_agent()
    run_to_end(agent, api, 1)
    assert api.state_of(1) == "succeeded"
    assert [api.results[(1, k, "extracted")]["data"]["carried"] for k in range(3)] == [
        None, "restart of step 0", "restart of step 1"]
    assert [api.results[(1, k, "extracted")]["data"]["x"] for k in range(3)] == [1.5, 2.5, 3.5]
    manifest = json.loads((step_dir(agent, 1, 1) / "carried.json").read_text())
    assert manifest["state.restart"]["from"] == "step-0" and len(manifest["state.restart"]["sha256"]) == 64
    assert len(runs_of(tmp_path)) == 3
    assert all(not (step_dir(agent, 1, k) / "scratch.bin").exists() for k in range(3))


def test_a_failed_step_stops_the_chain(api, make_agent, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path, values=[0, 1, 2], fail="yes"))
    agent = make_agent()
    run_to_end(agent, api, 1)
    assert distinct(api.states(1)) == ["running", "validating", "failed"]
    failed = api.events[1][-1]
    assert (failed["failure_class"], failed["reason"], failed["step"]) == ("scf_not_converged", "did not converge", 0)
    assert len(runs_of(tmp_path)) == 1 and not step_dir(agent, 1, 1).exists()
    assert not [key for key in api.results if key[0] == 1]
    assert any("stdout.txt: ERROR: did not converge" in m for m in api.log_messages(1))


def test_an_unusable_calculation_fails_without_stopping_the_agent(api, make_agent, tmp_path):
    api.add_calculation({"id": 1, "engine": "no-such-engine", "config": {}})
    api.add_calculation(toy_spec(2, tmp_path))
    agent = make_agent()
    tick_until(agent, lambda: not agent.state.open_runs() and api.state_of(2) == "succeeded")
    assert api.states(1) == ["failed"]
    assert "unknown engine 'no-such-engine'" in api.events[1][0]["reason"]


def test_a_cancel_in_the_heartbeat_answer_kills_the_job(api, make_agent, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path, sleep=30))
    agent = make_agent()
    tick_until(agent, lambda: "running" in api.states(1))
    pid = agent.state.open_runs()[0].handle["pid"]
    api.request_cancel(1)
    tick_until(agent, lambda: not agent.state.open_runs())
    assert api.state_of(1) == "cancelled"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not (step_dir(agent, 1, 0) / "results.json").exists()


def test_the_heartbeat_reports_the_machine_and_renews_running_calculations(api, make_agent, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path, sleep=2))
    agent = make_agent()
    tick_until(agent, lambda: "running" in api.states(1))
    agent.heartbeat()
    beat = api.heartbeats[-1]
    assert beat["running"] == [1] and "command" in beat["engines"]
    assert beat["memory_total"] > 0 and beat["disk_free"] > 0 and len(beat["load"]) == 3
    assert "energy_summary" in beat["analyses"]
    api.request_cancel(1)
    tick_until(agent, lambda: not agent.state.open_runs())


def test_the_server_can_lower_the_concurrency(api, make_agent, tmp_path):
    api.settings["max_concurrent"] = 1
    for calc_id in (1, 2):
        api.add_calculation(toy_spec(calc_id, tmp_path, sleep=0.3))
    agent = make_agent(max_concurrent=4)
    tick_until(agent, lambda: not agent.state.open_runs() and api.state_of(2) == "succeeded")
    assert all(len(claim["ids"]) <= 1 for claim in api.claims)
    assert all(c["max"] == 1 for c in api.claims)


def test_a_disabled_cluster_claims_nothing(api, make_agent, tmp_path):
    api.settings["enabled"] = False
    api.add_calculation(toy_spec(1, tmp_path))
    agent = make_agent()
    for _ in range(5):
        agent.tick()
    assert api.claims == [] and api.state_of(1) == "queued"


def test_the_same_attempt_is_never_accepted_twice(make_agent, tmp_path):
    agent = make_agent()
    spec = toy_spec(1, tmp_path)
    assert agent.accept(spec) is not None
    assert agent.accept(dict(spec)) is None
    assert len(agent.state.open_runs()) == 1


def test_a_newer_attempt_supersedes_the_old_one(api, make_agent, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path, sleep=30))
    agent = make_agent()
    tick_until(agent, lambda: "running" in api.states(1))
    old_pid = agent.state.open_runs()[0].handle["pid"]
    api.stop()  # the agent loses the server, which gives the lease up and requeues attempt 2
    agent.tick()
    api.calcs[1].update(state="queued", agent_seq=0)  # the server resets the mark for a new attempt
    api.calcs[1]["spec"].update(attempt=2, config={**api.calcs[1]["spec"]["config"]})
    api.calcs[1]["spec"]["config"]["options"] = {**api.calcs[1]["spec"]["config"]["options"], "sleep": 0}
    api.events[1] = []
    api.start()
    tick_until(agent, lambda: not agent.state.open_runs())
    assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == psutil.STATUS_ZOMBIE
    assert distinct(api.states(1)) == ["running", "validating", "extracting", "succeeded"]
    assert api.seqs(1) == list(range(1, len(api.seqs(1)) + 1)) and api.duplicates == []
    assert agent.workspace.step_dir(1, 2, 0).exists()


def test_analyses_run_after_the_last_step_and_are_posted(api, make_agent, tmp_path, monkeypatch):
    from siestaflow_agent.analyses import run as analyses_run

    def fake_run_step(ids, extracted, outdir):
        (outdir / "e.svg").write_text("<svg/>")
        return [{"name": "energy_summary", "status": "ok", "data": {"energy": extracted["energy"]},
                 "message": "", "artifacts": ["e.svg"]}]

    monkeypatch.setattr(analyses_run, "run_step", fake_run_step)
    api.add_calculation(toy_spec(1, tmp_path, values=[0, 1], analyses=["energy_summary"]))
    agent = make_agent()
    run_to_end(agent, api, 1)
    assert distinct(api.states(1)) == ["running", "validating", "extracting"] * 2 + ["analysing", "succeeded"]
    for k, energy in ((0, -4.5), (1, -7.5)):
        body = api.results[(1, k, "analyses")]
        assert body["analyses"] == [{"name": "energy_summary", "status": "ok", "data": {"energy": energy},
                                     "message": ""}]
        assert body["artifacts"][0]["name"] == "e.svg" and body["artifacts"][0]["content_type"] == "image/svg+xml"


def test_real_analyses_on_command_results_do_not_fail_the_calculation(api, make_agent, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path, analyses=["energy_summary", "scf_convergence"]))
    agent = make_agent()
    run_to_end(agent, api, 1)
    assert api.state_of(1) == "succeeded"
    names = [a["name"] for a in api.results[(1, 0, "analyses")]["analyses"]]
    assert names == ["energy_summary", "scf_convergence"]  # catalogue order


def test_the_agent_resumes_after_a_restart_without_running_anything_twice(api, make_agent, make_config, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path, sleep=1.5))
    config = make_config()
    first = make_agent(config)
    thread = threading.Thread(target=first.run)
    thread.start()
    wait_for(lambda: "running" in api.states(1))
    first.stop.set()
    thread.join(10)
    assert not thread.is_alive()
    run = StateStore(config.work_dir / "state.sqlite3")
    [record] = run.open_runs()
    run.close()
    assert record.phase == "running" and record.final is None  # stopped mid-run

    second = make_agent(config)
    thread = threading.Thread(target=second.run)
    thread.start()
    wait_for(lambda: api.state_of(1) == "succeeded")
    wait_for(lambda: not (step_dir(second, 1, 0) / "scratch.bin").exists())
    second.stop.set()
    thread.join(10)

    assert len(runs_of(tmp_path)) == 1  # the job ran once, and the new agent re-attached to it
    assert [c["ids"] for c in api.claims if c["ids"]] == [[1]]
    assert distinct(api.states(1)) == ["running", "validating", "extracting", "succeeded"]
    assert api.duplicates == [] and api.seqs(1) == list(range(1, len(api.seqs(1)) + 1))


def test_two_agents_cannot_share_a_work_folder(make_agent, make_config):
    config = make_config()
    make_agent(config)
    with pytest.raises(WorkDirLockedError):
        make_agent(config)


def test_a_refused_result_is_never_acknowledged_so_nothing_is_deleted(api, make_agent, tmp_path):
    api.max_result_bytes = 10  # every result is "too large": 413
    api.add_calculation(toy_spec(1, tmp_path))
    agent = make_agent()
    run_to_end(agent, api, 1)
    assert api.state_of(1) == "succeeded" and (1, 0, "extracted") not in api.results
    entry_id = agent.state.get(1, 1).data["results"]["0"]
    assert agent.outbox.status(entry_id) == "rejected"
    assert (step_dir(agent, 1, 0) / "scratch.bin").exists()


@pytest.mark.parametrize(("final", "restart_kept"), [(None, True), ("failed", True), ("succeeded", False)])
def test_cleanup_keeps_carry_files_until_the_chain_succeeds(make_agent, tmp_path, final, restart_kept):
    agent = make_agent(cleanup={"patterns": ["*.restart", "*.json"], "keep": []})
    run = agent.accept(toy_spec(1, tmp_path, values=[0, 1], carry=["*.restart"]))
    folder = agent.workspace.new_step_dir(1, 1, 0)
    (folder / "program.json").write_text(json.dumps({"program": "toy"}))
    for name in ("state.restart", "scratch.bin", "extracted.json"):
        (folder / name).write_text("x")
    run.data["staged"], run.final = [0, 1], final
    agent._clean_step(run, 0)
    assert not (folder / "scratch.bin").exists()
    assert (folder / "state.restart").exists() is restart_kept
    assert (folder / "extracted.json").exists()  # the agent's own record, whatever the policy


def test_a_chain_resumed_at_the_failed_step_gets_the_files_of_the_step_before(api, make_agent, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path, values=[0, 1, 2], carry=["*.restart"], fail="step-1"))
    agent = make_agent(cleanup={"patterns": ["*.restart", "*.bin"], "keep": []})
    run_to_end(agent, api, 1)
    assert api.state_of(1) == "failed" and api.events[1][-1]["step"] == 1
    assert (step_dir(agent, 1, 0) / "state.restart").exists()  # kept: the chain may be resumed
    # the user resumes: a new attempt from step 1 (what the server hands out after resume)
    api.add_calculation(toy_spec(1, tmp_path, values=[0, 1, 2], carry=["*.restart"], attempt=2, start_step=1,
                                 resume_from_attempt=1))
    run_to_end(agent, api, 1)
    assert api.state_of(1) == "succeeded"
    assert [api.results[(1, k, "extracted")]["data"]["carried"] for k in (1, 2)] == [
        "restart of step 0", "restart of step 1"]
    manifest = json.loads((step_dir(agent, 1, 1, attempt=2) / "carried.json").read_text())
    assert manifest["state.restart"]["from"] == "step-0"
    logged = [e.body["message"] for e in agent.outbox.entries(1, 2, "log")]
    assert any("carried 1 file(s) from step 1 of attempt 1" in m for m in logged)
    # the chain succeeded and every result was acknowledged: the kept files are gone too
    assert not (step_dir(agent, 1, 0) / "state.restart").exists()
    assert not (step_dir(agent, 1, 1, attempt=2) / "state.restart").exists()


def test_a_resumed_step_without_an_earlier_attempt_here_starts_from_scratch(api, make_agent, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path, values=[0, 1], carry=["*.restart"], attempt=3, start_step=1,
                                 resume_from_attempt=2))
    agent = make_agent()
    run_to_end(agent, api, 1)
    assert api.state_of(1) == "succeeded" and api.results[(1, 1, "extracted")]["data"]["carried"] is None
    assert any("starts from scratch" in e.body["message"] for e in agent.outbox.entries(1, 3, "log"))


def test_a_round_says_whether_it_moved_anything_on(api, make_agent, tmp_path):
    agent = make_agent()
    assert agent.tick() is False  # nothing to do: the loop waits poll_interval before the next round
    api.add_calculation(toy_spec(1, tmp_path, sleep=0.6))
    assert agent.tick() is True  # claimed and submitted
    assert agent.tick() is False  # the job still runs: nothing moved, so the loop waits
    tick_until(agent, lambda: api.state_of(1) == "succeeded")
    progress = [agent.tick() for _ in range(5)]
    assert not agent.state.open_runs() and progress[-1] is False  # closed, then idle again


def test_an_idle_agents_long_poll_never_outlasts_its_next_heartbeat(api, make_agent):
    agent = make_agent()
    agent.tick()  # heartbeat sent, nothing to claim
    agent.heartbeat_interval = 5
    agent.config = dataclasses.replace(agent.config, claim_wait=20)
    assert 3 <= agent.claim_wait() <= 5
    agent._last_heartbeat -= 4.5  # the next heartbeat is due in half a second
    assert agent.claim_wait() == 0
    agent.heartbeat_interval = 60
    assert agent.claim_wait() == 20  # capped by claim_wait


def committed(path, query: str) -> list[tuple]:
    """Rows another process would read from one of the agent's files: what is on disk."""
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def test_a_round_commits_its_writes_before_a_job_starts_and_before_they_are_sent(api, make_agent, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path))
    agent = make_agent()
    work = agent.config.work_dir
    seen_at_submit: list[tuple] = []
    submit = agent.executor.submit

    def submit_and_look(job):
        seen_at_submit.extend(committed(work / "state.sqlite3", "SELECT record FROM runs"))
        return submit(job)

    agent.executor.submit = submit_and_look
    unsent_at_delivery: list[int] = []
    post_reports = agent.client.post_reports

    def post_and_look(reports):
        pending = committed(work / "outbox.sqlite3", "SELECT COUNT(*) FROM entries WHERE status='pending'")[0][0]
        unsent_at_delivery.append(pending - len(reports))
        return post_reports(reports)

    agent.client.post_reports = post_and_look
    tick_until(agent, lambda: api.state_of(1) == "succeeded")
    tick_until(agent, lambda: not agent.state.open_runs())

    assert api.state_of(1) == "succeeded"
    # the job started only once its run (claimed, staged, about to be submitted) was on disk
    assert len(seen_at_submit) == 1 and json.loads(seen_at_submit[0][0])["phase"] == "submit"
    # every report sent had been committed: the outbox on disk held at least what went out
    assert unsent_at_delivery and min(unsent_at_delivery) >= 0


def test_kept_files_go_even_when_the_results_are_acknowledged_only_after_the_chain_succeeded(
        api, make_agent, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path, values=[0, 1, 2], carry=["*.restart"], fail="step-1"))
    agent = make_agent(cleanup={"patterns": ["*.restart", "*.bin"], "keep": []})
    run_to_end(agent, api, 1)
    assert (step_dir(agent, 1, 0) / "state.restart").exists()  # kept for a resume
    api.add_calculation(toy_spec(1, tmp_path, values=[0, 1, 2], carry=["*.restart"], attempt=2, start_step=1,
                                 resume_from_attempt=1))
    tick_until(agent, lambda: "running" in api.states(1)[-1:])  # the resumed attempt runs
    api.mode = "503"  # an outage: the rest of the chain is acknowledged only after it succeeded
    tick_until(agent, lambda: agent.state.open_runs() and agent.state.open_runs()[-1].final == "succeeded")
    api.mode = None
    run_to_end(agent, api, 1)
    assert api.state_of(1) == "succeeded"
    assert not (step_dir(agent, 1, 0) / "state.restart").exists()
    assert not (step_dir(agent, 1, 1, attempt=2) / "state.restart").exists()


def test_what_is_claimed_is_on_disk_before_anything_runs(api, make_agent, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path))
    api.add_calculation(toy_spec(2, tmp_path))
    agent = make_agent()
    on_disk: list[list[tuple]] = []
    advance = agent.advance

    def look_then_advance(run):  # a crash here must not forget the claims
        on_disk.append(committed(agent.config.work_dir / "state.sqlite3", "SELECT calc_id FROM runs ORDER BY calc_id"))
        advance(run)

    agent.advance = look_then_advance
    agent.tick()
    assert on_disk and on_disk[0] == [(1,), (2,)]
