"""One table-driven test over every (from, to) pair of states, and the conditional update."""

import itertools

import pytest

from calculations.models import Calculation, CalculationEvent
from calculations.services import IllegalTransition, StaleState, transition
from calculations.states import TRANSITIONS, State

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
