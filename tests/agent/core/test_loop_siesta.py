"""The loop with the real SIESTA engine, fed by the ``fake_siesta`` test double (a recorded run).

Covers what only SIESTA needs from the loop: the fdf on stdin and each program's own stdout
file (the engine's ``invocations()``), and real analyses writing plots sent as artifacts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .conftest import run_to_end

pytest.importorskip("siestaflow_agent.engines.siesta")
pytest.importorskip("siestaflow_agent.testing.fake_siesta")
CASE = Path(__file__).parents[1] / "data" / "siesta-samples" / "h2o_scf_v4.1"
if not CASE.is_dir():
    pytest.skip("SIESTA sample outputs are not available", allow_module_level=True)


def test_a_siesta_calculation_runs_validates_extracts_and_is_analysed(api, make_agent, tmp_path):
    command = f"{sys.executable} -m siestaflow_agent.testing.fake_siesta --case {CASE} --sleep 0.3"
    api.add_calculation({"id": 1, "engine": "siesta", "name": "h2o",
                         "config": {"fdf": (CASE / "h2o.fdf").read_text(), "options": {}},
                         "analyses": ["energy_summary", "scf_convergence"]})
    agent = make_agent(engines={"siesta": command})
    run_to_end(agent, api, 1)

    assert api.state_of(1) == "succeeded", api.events[1][-1]
    step = agent.workspace.step_dir(1, 1, 0)
    assert (step / "h2o.out").stat().st_size > 0  # stdout redirected to the program's own file
    assert (step / "stdout.txt").read_text() == ""
    extracted = api.results[(1, 0, "extracted")]["data"]
    assert extracted["status"] and extracted["energies"]
    analyses = api.results[(1, 0, "analyses")]
    assert [(a["name"], a["status"]) for a in analyses["analyses"]] == [("energy_summary", "ok"),
                                                                        ("scf_convergence", "ok")]
    assert {a["name"] for a in analyses["artifacts"]} >= {"scf_convergence.png"}
