"""A command-engine calculation created through the API keeps the program it names."""

from calculations.models import Calculation


def test_it_keeps_the_program_of_a_command_calculation(api_as, cluster):
    body = {"name": "tiny", "cluster": cluster.pk, "engine": "command",
            "config": {"program": "tiny", "options": {"x": 1}}}
    response = api_as("alice").post("/api/calculations/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["config"]["program"] == "tiny"
    assert Calculation.objects.get(pk=response.json()["id"]).config == {"program": "tiny", "options": {"x": 1},
                                                                         "fdf": ""}


def test_it_leaves_out_the_program_when_none_is_given(api_as, cluster):
    body = {"name": "water", "cluster": cluster.pk, "engine": "command", "config": {"options": {}}}
    response = api_as("alice").post("/api/calculations/", body, format="json")
    assert response.status_code == 201, response.content
    assert "program" not in response.json()["config"]
