"""siestaflow.lib.plots on real data shapes: series made by the agent's extractors and
analyses from the SIESTA samples, rendered to SVG and downsampled."""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from siestaflow_agent.analyses.run import run_chain, run_step
from siestaflow_agent.engines.siesta.extract import extract

from siestaflow.lib.plots import MAX_POINTS, Line, Plot, downsample, render_svg

SAMPLES = Path(__file__).resolve().parents[1] / "agent" / "data" / "siesta-samples"
SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: bytes) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - the SVG was made by this process, not received


@functools.cache
def extracted(case: str) -> dict:
    return extract(SAMPLES / case)


def analysis(tmp_path, name: str, case: str) -> dict:
    [outcome] = run_step([name], extracted(case), tmp_path)
    assert outcome["status"] == "ok"
    return outcome["data"]


def drawn_lines(svg: bytes) -> list[int]:
    """The number of vertices of each data line (``render_svg`` names them ``series-<n>``)."""
    root = parse(svg)
    return [len(re.findall(r"[ML]", group.find(f"{SVG}path").get("d")))
            for group in root.iter(f"{SVG}g") if group.get("id", "").startswith("series-")]


def test_it_keeps_a_short_series_as_it_is():
    dos = extracted("si_bulk_pdos_k_v5.1")["dos"]  # 200 points
    xs, ys = downsample(dos["energy"], dos["dos"][0])
    assert xs.tolist() == dos["energy"] and ys.tolist() == dos["dos"][0]


def test_it_downsamples_a_long_dos_keeping_its_peaks():
    dos = extracted("srtio3_spin_polarized_v5.1")["dos"]  # 3000 points per spin
    xs, ys = downsample(dos["energy"], dos["dos"][0], max_points=500)
    assert len(xs) <= 500
    assert ys.max() == max(dos["dos"][0]) and ys.min() == min(dos["dos"][0])
    assert np.all(np.diff(xs) > 0)  # still in order, so still a line
    assert xs[0] == dos["energy"][0]


def test_it_turns_missing_values_into_gaps():
    xs, ys = downsample([0, 1, 2], [1.0, None, 3.0])
    assert np.isnan(ys[1]) and ys[0] == 1.0 and ys[2] == 3.0


def test_it_renders_the_agents_transmission_as_an_svg_with_labelled_axes(tmp_path):
    data = analysis(tmp_path, "transmission", "graphene_transiesta_tbtrans_v5.1")
    lines = tuple(Line(p["energy"], p["transmission"], f"{p['from']} → {p['to']}", group=0, style=n)
                  for n, p in enumerate(data["pairs"]))
    svg = render_svg(Plot("Transmission", "E − E_F (eV)", "transmission T(E)", lines, zero_line="x"))
    assert parse(svg).tag == f"{SVG}svg"
    text = svg.decode()
    for label in ("Transmission", "E − E_F (eV)", "transmission T(E)", "Left → Right"):
        assert f"<!-- {label} -->" in text
    assert len(drawn_lines(svg)) == len(data["pairs"])


def test_it_draws_at_most_max_points_per_line():
    x = np.linspace(-10, 10, 100_000)
    svg = render_svg(Plot("Long", "x (eV)", "y", (Line(x, np.sin(40 * x)),)))
    [line] = drawn_lines(svg)
    assert 100 < line <= MAX_POINTS


def test_it_overlays_the_agents_iv_curve_and_relaxations(tmp_path):
    steps = [extracted("au100_transiesta_bias_0_0.25V_v4.1/V0.00"),
             extracted("au100_transiesta_bias_0_0.25V_v4.1/V0.25")]
    [iv] = run_chain(["transmission", "iv_curve"], steps, tmp_path, values=[0.0, 0.25])
    first, second = (analysis(tmp_path / c, "relaxation", c) for c in ("sih_cg_relax_v4.1", "h2o_broyden_relax_v4.0"))
    plot = Plot("Relaxation", "geometry step", "max force (eV/Å)", (
        Line(first["step"], first["max_force"], "SiH", group=0, marker=True),
        Line(second["step"], second["max_force"], "H2O", group=1, marker=True),
        Line(iv["data"]["pairs"][0]["voltage"], [0.0, 1.0], "zero is dropped on a log axis", group=2)), logy=True)
    svg = render_svg(plot)
    assert drawn_lines(svg)[:2] == [len(first["step"]), len(second["step"])]
    assert "<!-- SiH -->" in svg.decode() and "<!-- H2O -->" in svg.decode()


def test_it_never_lets_a_label_inject_markup():
    svg = render_svg(Plot("<b>t</b>", "x", "y", (Line([0, 1], [0, 1], "<script>alert(1)</script>"),)))
    assert b"<script" not in svg and b"<b>" not in svg
    parse(svg)  # still well-formed XML


@pytest.mark.parametrize("ticks", [None, ((0.0, 0.5, 1.0), ("Γ", "X", "M"))])
def test_it_labels_high_symmetry_points_of_a_band_path(ticks):
    bands = extracted("srtio3_spin_polarized_v5.1")["bands"]
    k = np.asarray(bands["k"]) / bands["k"][-1]
    eig = np.asarray(bands["eigenvalues"][0]) - bands["fermi"]
    lines = tuple(Line(k, eig[:, n], "SrTiO3" if n == 0 else None) for n in range(eig.shape[1]))
    svg = render_svg(Plot("Bands", "k-path", "E − E_F (eV)", lines, ylim=(-10, 10), xticks=ticks)).decode()
    assert ("<!-- Γ -->" in svg) == (ticks is not None)
