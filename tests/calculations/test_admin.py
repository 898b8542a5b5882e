"""Calculations in the Django admin: deleting a selection."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from calculations.admin import CalculationAdmin
from calculations.models import Calculation, CalculationEvent


def _delete_selected(client, calcs):
    return client.post("/admin/calculations/calculation/", {
        "action": "delete_selected", "_selected_action": [calc.pk for calc in calcs], "post": "yes"})


def test_an_admin_deletes_a_selection_a_chunk_at_a_time(page_as, submit, monkeypatch):
    calcs = [submit(name=f"water {n}") for n in range(3)]
    kept = submit(name="kept")
    monkeypatch.setattr(CalculationAdmin, "delete_chunk", 2)
    client = page_as("root")
    with CaptureQueriesContext(connection) as queries:
        response = _delete_selected(client, calcs)
    assert response.status_code == 302
    assert list(Calculation.objects.values_list("pk", flat=True)) == [kept.pk]
    assert set(CalculationEvent.objects.values_list("calculation_id", flat=True)) == {kept.pk}
    deletes = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "calculations_calculation"')]
    assert len(deletes) == 2  # 2 + 1


def test_a_moderator_may_not_delete_calculations(page_as, submit):
    calc = submit()
    response = _delete_selected(page_as("mod"), [calc])
    assert Calculation.objects.filter(pk=calc.pk).exists()
    assert response.status_code == 302  # back to the list: the action is not offered to moderators
