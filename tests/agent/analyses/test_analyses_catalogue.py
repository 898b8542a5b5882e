"""The analysis catalogue: ids, dependencies, order, and no heavy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from siestaflow_agent.analyses.catalogue import CATALOGUE, ordered, validate_selection

REQUIRED = {"energy_summary", "scf_convergence", "relaxation", "band_structure", "dos",
            "transmission", "iv_curve"}


def test_the_catalogue_has_the_required_analyses():
    assert REQUIRED <= set(CATALOGUE)
    assert CATALOGUE["iv_curve"].chain_level and CATALOGUE["iv_curve"].requires == ("transmission",)
    assert not any(CATALOGUE[a].chain_level for a in REQUIRED - {"iv_curve"})


def test_every_dependency_exists():
    for analysis in CATALOGUE.values():
        assert set(analysis.requires) <= set(CATALOGUE)


def test_a_complete_selection_has_no_errors():
    assert validate_selection(["iv_curve", "transmission", "energy_summary"]) == []


def test_a_missing_dependency_is_named():
    assert validate_selection(["iv_curve"]) == ["'iv_curve' requires 'transmission'"]


def test_unknown_ids_are_named():
    assert validate_selection(["energy_summary", "phonons"]) == ["unknown analysis 'phonons'"]


def test_engine_applicability_is_checked_when_asked():
    assert validate_selection(["band_structure"], engine="pyscf") == [
        "'band_structure' does not apply to engine 'pyscf'"]
    assert validate_selection(["energy_summary"], engine="pyscf") == []


def test_ordered_puts_dependencies_first():
    assert ordered(["iv_curve", "transmission"]) == ["transmission", "iv_curve"]
    assert ordered(["dos", "energy_summary", "iv_curve", "transmission"]) == [
        "energy_summary", "dos", "transmission", "iv_curve"]


def test_ordered_refuses_unknown_ids():
    with pytest.raises(ValueError, match="phonons"):
        ordered(["phonons"])


def test_importing_the_catalogue_loads_no_plotting_library():
    agent = Path(__file__).resolve().parents[3] / "agent"
    code = (f"import sys; sys.path.insert(0, {str(agent)!r}); "
            "import siestaflow_agent.analyses.catalogue; "
            "print(sorted(m for m in ('matplotlib', 'numpy', 'sisl') if m in sys.modules))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert output == "[]"
