"""One table-driven test over every (from, to) pair of states, and the conditional update."""

import itertools

import pytest

from calculations.models import Calculation, CalculationEvent
from calculations.services import IllegalTransition, StaleState, transition
from calculations.states import AGENT_REPORTABLE, TRANSITIONS, State

PAIRS = list(itertools.product(State, State))


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_it_allows_exactly_the_transitions_of_the_table(submit, source, target):
    calc = submit()
    Calculation.objects.filter(pk=calc.pk).update(state=source)
    calc.refresh_from_db()
    events_before = CalculationEvent.objects.count()
    if target in TRANSITIONS[source]:
        event = transition(calc, target, reason="test")
        assert (event.from_state, event.to_state) == (source, target)
        assert Calculation.objects.get(pk=calc.pk).state == target
    else:
        with pytest.raises(IllegalTransition, match=f"from {source} to {target}"):
            transition(calc, target)
        assert Calculation.objects.get(pk=calc.pk).state == source
        assert CalculationEvent.objects.count() == events_before


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_it_answers_every_agent_event_by_the_table(submit, agent_client, source, target):
    """Through the agent API: a transition of the table is applied, the current state again
    is progress only, anything else is a 409 saying why and changes nothing."""
    calc = submit()
    Calculation.objects.filter(pk=calc.pk).update(state=source)
    events_before = CalculationEvent.objects.count()
    response = agent_client.post(f"/api/agent/v1/calculations/{calc.pk}/events/",
                                 {"seq": 1, "state": target}, format="json")
    applies = target in AGENT_REPORTABLE and (target == source or target in TRANSITIONS[source])
    calc.refresh_from_db()
    if applies:
        assert response.status_code == 200, response.content
        assert (calc.state, calc.agent_seq) == (target, 1)
    else:
        assert response.status_code == 409, response.content
        assert str(target) in response.json()["detail"]
        assert (calc.state, calc.agent_seq, CalculationEvent.objects.count()) == (source, 0, events_before)


def test_it_detects_a_concurrent_change_and_overwrites_nothing(submit):
    calc = submit()
    stale_copy = Calculation.objects.get(pk=calc.pk)
    transition(calc, State.CLAIMED)
    with pytest.raises(StaleState):
        transition(stale_copy, State.CANCELLED)
    assert Calculation.objects.get(pk=calc.pk).state == State.CLAIMED
    assert not CalculationEvent.objects.filter(calculation=calc, to_state=State.CANCELLED).exists()


def test_it_stamps_start_and_finish_times(submit):
    calc = submit()
    for state in (State.CLAIMED, State.RUNNING, State.VALIDATING, State.EXTRACTING, State.SUCCEEDED):
        transition(calc, state)
    calc.refresh_from_db()
    assert calc.started_at is not None and calc.finished_at >= calc.started_at
