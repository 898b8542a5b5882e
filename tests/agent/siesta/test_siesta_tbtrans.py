"""TBtrans stdout (completion, currents) and ASCII transmission files."""

from __future__ import annotations

import pytest
from siesta_manifest import DATA, tbtrans_outputs
from siestaflow_agent.engines.siesta.tbtrans import (
    electrode_names,
    electrode_names_from_file,
    parse_tbtrans_stdout,
    read_transmission,
    split_pair,
    transmission_files,
)

GRAPHENE = DATA / "graphene_transiesta_tbtrans_v5.1"
AU = DATA / "au100_transiesta_bias_0_0.25V_v4.1"


@pytest.mark.parametrize("case", tbtrans_outputs(), ids=lambda c: f"{c['case']}/{c['file']}")
def test_it_reads_every_tbtrans_output_of_the_manifest(case):
    out = parse_tbtrans_stdout(case["path"])
    assert out.is_tbtrans and out.version == case["version"]
    assert out.completed is case["tbt_completed"] and out.end_of_run is case["end_of_run"]


@pytest.mark.parametrize("case", tbtrans_outputs(), ids=lambda c: f"{c['case']}/{c['file']}")
def test_its_currents_match_the_manifest_values(case):
    out = parse_tbtrans_stdout(case["path"])
    assert len(out.currents) == len(case["currents"])
    for found, expected in zip(out.currents, case["currents"], strict=True):
        assert (found["from"], found["to"]) == (expected["from"], expected["to"])
        assert found["voltage"] == pytest.approx(expected["voltage"])
        assert found["current"] == pytest.approx(expected["current"], abs=1e-15)


def test_it_reads_the_power_line_and_bias():
    out = parse_tbtrans_stdout(AU / "V0.25" / "tbt_au_100.out")
    assert out.voltage == pytest.approx(0.25)
    assert out.currents[0]["power"] == pytest.approx(-0.936755e-06)
    assert out.electrodes == ["Left", "Right"]


def test_electrode_names_may_contain_dashes(tmp_path):
    out = tmp_path / "tbt.out"
    out.write_text(
        "TBtrans Version: v4.1-b4-351\n *  WELCOME TO TBtrans  *\n"
        "tbt: Completed in 1.0 s\n\nCurrents (ensure entire Fermi function window):\n"
        "el-1 -> el-3, V [V] / I [A]: 0.500000     V / 0.123000E-05 A\n"
        "el-1 -> el-3, V [V] / P [W]: 0.500000     V / 0.100000E-06 W\n"
        ">> End of run:  1-JAN-2024  00:00:00\n"
    )
    parsed = parse_tbtrans_stdout(out)
    assert parsed.completed
    assert parsed.currents == [{"from": "el-1", "to": "el-3", "voltage": 0.5,
                                "current": pytest.approx(1.23e-6), "power": pytest.approx(1e-7)}]


def test_it_takes_electrode_names_from_the_fdf_blocks():
    assert electrode_names_from_file(AU / "V0.25" / "au_100.fdf") == ["Left", "Right"]
    assert electrode_names_from_file(GRAPHENE / "graphene.fdf") == ["Left", "Right"]
    projection = DATA / "c60_tb_tbtrans_projection_v5.1" / "projection.fdf"
    assert electrode_names_from_file(projection) == ["Left", "Right"]
    text = "%block TBT.Elec.el-1\n HS a.TSHS\n%endblock\n%block TBT.Elec.el-2-b\n%endblock\n"
    assert electrode_names(text.splitlines()) == ["el-1", "el-2-b"]


def test_it_splits_pair_suffixes_with_the_known_names():
    assert split_pair("el-1-el-3", ["el-1", "el-3"]) == ("el-1", "el-3")
    assert split_pair("el-1-el-3", []) is None  # ambiguous without the fdf
    assert split_pair("Left-Right", []) == ("Left", "Right")
    assert split_pair("Left-Up", ["Left", "Right"]) is None


def test_k_averaging_a_k_resolved_file_gives_the_averaged_file():
    resolved = read_transmission(GRAPHENE / "graphene.TBT.TRANS_Left-Right")
    averaged = read_transmission(GRAPHENE / "graphene.TBT.AVTRANS_Left-Right")
    assert resolved["k_resolved"] and resolved["k_points"] == 11
    assert not averaged["k_resolved"]
    assert resolved["energy"] == averaged["energy"] == [-0.75, -0.25, 0.25, 0.75]
    assert resolved["transmission"] == pytest.approx(averaged["transmission"], rel=1e-6, abs=1e-15)


def test_it_averages_the_four_k_points_of_the_gold_junction():
    data = read_transmission(AU / "V0.25" / "au_100.TBT.TRANS_Left-Right")
    assert data["k_points"] == 4 and len(data["energy"]) == 400
    assert data["energy"][0] == pytest.approx(-1.995) and data["energy"][-1] == pytest.approx(1.995)
    assert all(t >= 0 for t in data["transmission"])


def test_it_lists_pair_files_preferring_averaged_ones(tmp_path):
    listed = transmission_files(GRAPHENE, ["Left", "Right"])
    assert {(f["from"], f["to"]) for f in listed} == {
        ("Left", "Left"), ("Left", "Right"), ("Right", "Left"), ("Right", "Right")}
    assert all(f["averaged"] for f in listed)
    (tmp_path / "dev.TBT.AVTRANS_el-1-el-3").write_text("# E T\n 0.0 1.0\n")
    (tmp_path / "dev.TBT.TRANS_el-1-el-3").write_text("# kb= 0 0 0 w= 1.0\n 0.0 1.0\n")
    [item] = transmission_files(tmp_path, ["el-1", "el-3"])
    assert (item["from"], item["to"], item["averaged"]) == ("el-1", "el-3", True)
