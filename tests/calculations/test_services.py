"""Submitting, approving, cancelling, resuming; bad input refused with nothing stored."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from calculations import ingest, services
from calculations.models import Calculation, CalculationFile
from calculations.services import IllegalTransition, transition
from calculations.states import State
from calculations.why import why_waiting
from tests.calculations.conftest import H2O_FDF


def test_it_queues_a_calculation_when_no_approval_is_needed(submit):
    calc = submit()
    assert calc.state == State.QUEUED and calc.approval == "not_required"
    assert calc.processed is False
    assert calc.structure["species"] == ["O", "H", "H"]
    assert calc.events.get().reason == "submitted"


def test_it_waits_for_approval_when_the_global_setting_asks(submit, settings):
    settings.REQUIRE_APPROVAL = True
    calc = submit()
    assert calc.state == State.PENDING_APPROVAL and calc.approval == "pending"


def test_it_lets_a_cluster_override_the_global_approval_setting(submit, cluster, settings):
    settings.REQUIRE_APPROVAL = True
    cluster.requires_approval = False
    cluster.save()
    assert submit().state == State.QUEUED


@pytest.mark.parametrize(("overrides", "field", "words"), [
    ({"config": {"fdf": "%block ChemicalSpeciesLabel\n 1 8 O\n"}}, "config", "never closed"),
    ({"config": {"fdf": ""}}, "config", "needs an fdf"),
    ({"pseudopotentials": "only-O"}, "pseudopotentials", "No pseudopotential for species H"),
    ({"chain": {"parameter": "TS.Voltage", "values": []}}, "chain", "non-empty list of values"),
    ({"chain": {"values": [0.1]}}, "chain", "parameter"),
    ({"analyses": ["iv_curve"], "chain": {"parameter": "TS.Voltage", "values": [0, 0.1]}},
     "analyses", "'iv_curve' requires 'transmission'"),
    ({"analyses": ["no_such_analysis"]}, "analyses", "unknown analysis"),
    ({"engine": "gaussian"}, "engine", "Unknown engine"),
    ({"files": [("../../etc/passwd", b"x")]}, "files", "not an allowed file name"),
])
def test_it_refuses_bad_input_with_a_message_and_stores_nothing(submit, pseudos, overrides, field, words):
    if overrides.get("pseudopotentials") == "only-O":
        overrides["pseudopotentials"] = [pseudos[0]]
    with pytest.raises(ValidationError) as raised:
        submit(**overrides)
    assert words in " ".join(raised.value.message_dict[field])
    assert Calculation.objects.count() == 0 and CalculationFile.objects.count() == 0


def test_it_refuses_an_engine_the_cluster_does_not_offer(submit, cluster):
    cluster.engines = ["pyscf"]
    cluster.save()
    with pytest.raises(ValidationError, match="does not offer siesta"):
        submit()


def test_it_refuses_files_over_the_size_limit(submit, settings):
    settings.UPLOAD_MAX_BYTES = 1024
    with pytest.raises(ValidationError, match="over the limit"):
        submit(files=[("elec.TSHS", b"x" * 2048)])
    assert Calculation.objects.count() == 0


def test_it_flags_a_duplicate_of_a_succeeded_calculation(submit):
    first = submit()
    Calculation.objects.filter(pk=first.pk).update(state=State.SUCCEEDED)
    second = submit(name="again")
    assert second.duplicate_of_id == first.pk
    third = submit(config={"fdf": H2O_FDF + "MeshCutoff 300 Ry\n", "options": {}})
    assert third.duplicate_of_id is None


def test_it_lets_moderators_approve_and_notifies_on_commit(submit, settings, mod, django_capture_on_commit_callbacks):
    settings.REQUIRE_APPROVAL = True
    calc = submit()
    with django_capture_on_commit_callbacks() as callbacks:
        services.approve(actor=mod, calc=calc)
    assert len(callbacks) == 1
    calc.refresh_from_db()
    assert calc.state == State.QUEUED and calc.approved_by == mod


def test_it_refuses_approval_by_a_plain_user(submit, settings, bob):
    settings.REQUIRE_APPROVAL = True
    calc = submit()
    with pytest.raises(PermissionDenied):
        services.approve(actor=bob, calc=calc)
    assert Calculation.objects.get(pk=calc.pk).state == State.PENDING_APPROVAL


def test_it_rejects_with_a_reason(submit, settings, mod):
    settings.REQUIRE_APPROVAL = True
    calc = submit()
    with pytest.raises(ValidationError):
        services.reject(actor=mod, calc=calc, reason=" ")
    services.reject(actor=mod, calc=calc, reason="use a bigger basis")
    calc.refresh_from_db()
    assert calc.state == State.CANCELLED and calc.approval == "rejected"
    assert calc.approval_reason == "use a bigger basis"


def test_it_cancels_a_waiting_calculation_at_once(submit, bob):
    calc = submit()
    services.cancel(actor=bob, calc=calc)
    assert Calculation.objects.get(pk=calc.pk).state == State.CANCELLED


def test_it_asks_the_agent_to_cancel_a_running_calculation(submit, bob, cluster):
    calc = submit()
    ingest.claim(cluster=cluster, max_count=1)
    calc.refresh_from_db()
    services.cancel(actor=bob, calc=calc)
    calc.refresh_from_db()
    assert calc.state == State.CLAIMED and calc.cancel_requested
    assert ingest.on_heartbeat(cluster=cluster, running_ids=[calc.pk]) == [calc.pk]


def test_it_refuses_to_cancel_a_finished_calculation(submit, bob):
    calc = submit()
    Calculation.objects.filter(pk=calc.pk).update(state=State.SUCCEEDED)
    calc.refresh_from_db()
    with pytest.raises(IllegalTransition):
        services.cancel(actor=bob, calc=calc)


def test_it_resumes_a_failed_chain_at_the_failed_step_as_a_new_attempt(submit, bob):
    calc = submit(chain={"parameter": "TS.Voltage", "unit": "V", "values": [0, 0.1, 0.2], "carry": ["*.TSDE"]})
    for state in (State.CLAIMED, State.RUNNING):
        transition(calc, state)
    transition(calc, State.FAILED, current_step=1, failure_class="scf_not_converged")
    services.resume(actor=bob, calc=calc)
    calc.refresh_from_db()
    assert (calc.state, calc.attempt, calc.start_step, calc.processed) == (State.QUEUED, 2, 1, False)
    assert calc.events.filter(attempt=1).exists() and calc.events.filter(attempt=2).exists()


def test_it_edits_only_before_the_start(submit, bob, cluster):
    calc = submit()
    services.update_calculation(actor=bob, calc=calc, priority=5, name="renamed")
    assert Calculation.objects.get(pk=calc.pk).priority == 5
    ingest.claim(cluster=cluster, max_count=1)
    with pytest.raises(ValidationError, match="no longer be edited"):
        services.update_calculation(actor=bob, calc=calc, name="late")


def test_it_claims_by_priority_then_age_within_the_cap(submit, cluster):
    cluster.max_concurrent = 2
    cluster.save()
    old, low, high = submit(name="old"), submit(name="low", priority=-1), submit(name="high", priority=5)
    claimed = ingest.claim(cluster=cluster, max_count=5)
    assert [c.pk for c in claimed] == [high.pk, old.pk]
    assert ingest.claim(cluster=cluster, max_count=5) == []
    assert Calculation.objects.get(pk=low.pk).state == State.QUEUED


def test_it_gives_a_disabled_cluster_no_work(submit, cluster):
    submit()
    cluster.enabled = False
    cluster.save()
    assert ingest.claim(cluster=cluster, max_count=1) == []


def test_it_says_why_a_calculation_is_not_running(submit, cluster, settings):
    cluster.max_concurrent = 1
    cluster.enabled = False
    cluster.save()
    first, second = submit(), submit(name="second")
    reasons = " ".join(why_waiting(second)["reasons"])
    assert "disabled" in reasons and "offline" in reasons and "1 calculation ahead" in reasons
    settings.REQUIRE_APPROVAL = True
    assert "approve" in why_waiting(submit(name="third"))["reasons"][0]
    cluster.enabled = True
    cluster.save()
    ingest.claim(cluster=cluster, max_count=1)
    assert any("at its cap" in r for r in why_waiting(second)["reasons"])
    assert first.pk != second.pk


def test_it_loses_and_requeues_a_silent_agents_calculation_then_gives_up(submit, cluster, settings, time_machine):
    settings.LEASE_MAX_ATTEMPTS = 2
    time_machine.move_to("2026-03-01 10:00:00", tick=False)
    calc = submit()
    for attempt in (1, 2):
        ingest.claim(cluster=cluster, max_count=1)
        time_machine.shift(settings.LEASE_SECONDS + 1)
        assert ingest.expire_leases() == 1
        calc.refresh_from_db()
        if attempt == 1:
            assert (calc.state, calc.attempt, calc.lost_count) == (State.QUEUED, 2, 1)
    assert (calc.state, calc.failure_class) == (State.FAILED, "lost")
    assert list(calc.events.filter(to_state=State.LOST).values_list("attempt", flat=True)) == [1, 2]


def test_a_silent_agents_calculation_whose_cancel_was_asked_is_cancelled_not_requeued(submit, bob, cluster,
                                                                                      settings, time_machine):
    time_machine.move_to("2026-03-01 10:00:00", tick=False)
    calc = submit()
    ingest.claim(cluster=cluster, max_count=1)
    services.cancel(actor=bob, calc=Calculation.objects.get(pk=calc.pk))
    time_machine.shift(settings.LEASE_SECONDS + 1)
    assert ingest.expire_leases() == 1
    calc.refresh_from_db()
    assert (calc.state, calc.attempt, calc.lost_count, calc.lease_expires_at) == (State.CANCELLED, 1, 0, None)
    assert calc.finished_at is not None
    last = calc.events.order_by("-pk").first()
    assert (last.from_state, last.to_state) == (State.CLAIMED, State.CANCELLED)
    assert last.reason.startswith("cancel requested; no word from the agent of")
    assert ingest.claim(cluster=cluster, max_count=1) == []


def test_it_keeps_a_lease_alive_with_heartbeats(submit, cluster, settings, time_machine):
    time_machine.move_to("2026-03-01 10:00:00", tick=False)
    calc = submit()
    ingest.claim(cluster=cluster, max_count=1)
    for _ in range(3):
        time_machine.shift(settings.LEASE_SECONDS - 5)
        ingest.on_heartbeat(cluster=cluster, running_ids=[calc.pk])
        assert ingest.expire_leases() == 0
    assert Calculation.objects.get(pk=calc.pk).state == State.CLAIMED


def test_it_keeps_a_rotation_chains_axis_and_unit_for_the_agent(submit, cluster, agent_client):
    calc = submit(chain={"parameter": "rotation", "values": [0, 45, 90], "axis": [0, 1, 1]})
    assert calc.chain == {"parameter": "rotation", "unit": "deg", "values": [0, 45, 90], "carry": [],
                          "axis": [0, 1, 1]}
    spec = agent_client.post("/api/agent/v1/claim/", {"max": 1}, format="json").json()["calculations"][0]
    assert spec["chain"]["axis"] == [0, 1, 1] and spec["molecule"]["species"] == ["O", "H", "H"]
    assert submit(chain={"parameter": "rotation", "values": [30]}).chain["axis"] == "z"  # the default
