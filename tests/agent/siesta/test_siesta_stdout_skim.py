"""The fast reader (skim.py) gives exactly what the line-by-line parser gives.

``parse_stdout`` reads a file through :class:`Skimmer`, which counts most geometry steps and
feeds the rest to the line parser; ``parse_lines`` feeds every line. Both are compared on every
sample stdout and on long generated outputs (steps of several samples repeated: relaxation, MD,
variable cell, 4.0 and 5.x formats, spin, TranSIESTA, unconverged cycles, garbage bytes), long
enough that the records are thinned, and cut at awkward places.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from siesta_manifest import DATA, siesta_outputs
from siestaflow_agent.engines.siesta import skim
from siestaflow_agent.engines.siesta.records import KEPT_RECORDS, clean
from siestaflow_agent.engines.siesta.stdout import StdoutParser, open_text, parse_lines, parse_stdout

SAMPLES = sorted({item["path"] for item in siesta_outputs()})
SIH = (DATA / "sih_cg_relax_v4.1" / "sih.out").read_bytes()
MD = (DATA / "si_md_anneal_v4.1" / "md_anneal.out").read_bytes()
BROYDEN = (DATA / "h2o_broyden_relax_v4.0" / "h2o_op_broyden.out").read_bytes()
SPIN = (DATA / "graphene_spin_cg_charges_v5.1" / "RUN.out").read_bytes()
GRAPHITE = (DATA / "graphite_varcell_cg_v4.1" / "graphite_c6_full.out").read_bytes()
UNCONVERGED = (DATA / "fe_cluster_noncol_gga_scf_not_conv_v4.1" / "fe_clust_noncollinear-gga.out").read_bytes()
TRANSIESTA = (DATA / "graphene_transiesta_tbtrans_v5.1" / "RUN.out").read_bytes()
ABORTED = (DATA / "si_scf_not_conv_abort_max1.0" / "aiida.out").read_bytes()
BEGIN = b"                        Begin CG opt. move =      7\n"


def snapshot(out) -> dict:
    """Every attribute of a SiestaOutput, the thinned records with their strides and latest."""
    state = {field.name: getattr(out, field.name) for field in dataclasses.fields(out)}
    for name in ("steps", "cycle_summaries"):
        thinned = state.pop(name)
        latest = thinned.last.to_dict() if hasattr(thinned.last, "to_dict") else thinned.last
        state[name] = (len(thinned), thinned.stride, latest,
                       [item if isinstance(item, dict) else item.to_dict() for item in thinned])
    state["cycles"] = [cycle.to_dict() for cycle in out.cycles]
    state["derived"] = (out.completed, out.is_relaxation, out.fermi_energy, out.total_energy)
    return clean(state)


def line_by_line(path) -> dict:
    with open_text(path) as handle:
        return snapshot(parse_lines(handle))


def skimmed(path) -> dict:
    with open(path, "rb") as handle:
        return snapshot(skim.Skimmer().read(handle))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.parent.name + "/" + path.name)
def test_every_sample_reads_the_same_skimmed(path):
    expected = line_by_line(path)
    assert snapshot(parse_stdout(path)) == expected
    assert parse_stdout(path).to_dict() == parse_lines(open_text(path)).to_dict()


def _steps(raw: bytes) -> list[bytes]:
    """The geometry steps of a sample (each from its Begin line), the last one left out."""
    lines = raw.split(b"\n")
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith(b"Begin ")]
    return [b"\n".join(lines[a:b]) + b"\n" for a, b in zip(starts, starts[1:], strict=False)]


def _around(raw: bytes, first: bytes, last: bytes) -> bytes:
    """The whole lines of ``raw`` from the one holding ``first`` to the one holding ``last``."""
    start = raw.rindex(b"\n", 0, raw.index(first)) + 1
    end = raw.index(b"\n", raw.rindex(last)) + 1
    return raw[start:end]


def _odd(step: bytes, rng: random.Random) -> bytes:
    """A step with a carriage return, a tab, bad UTF-8 or an iteration number reset (the same
    digit-blind form as the original, other cycles)."""
    kind = rng.randrange(4)
    if kind == 0:
        return step.replace(b"\n", b"\r\n", 3)
    if kind == 1:
        return step.replace(b"   scf:    2", b"\tscf:    2", 1)
    if kind == 2:
        return step.replace(b"Max ", b"Max\xff\xfe ", 1)
    return step.replace(b"   scf:    3 ", b"   scf:    1 ", 1)


def long_run(seed: int, n_steps: int, tail: bytes) -> bytes:
    """A long output: the sih header, ``n_steps`` steps drawn from several samples, ``tail``."""
    rng = random.Random(seed)
    common = _steps(SIH) + _steps(MD) + _steps(BROYDEN) + _steps(SPIN)
    rare = [BEGIN + _around(UNCONVERGED, b"scf:    1 ", b"SCF_NOT_CONV"),
            BEGIN + _around(TRANSIESTA, b"scf:    1 ", b"SCF cycle continued"),
            _steps(GRAPHITE)[3], BEGIN + b"   scf:    1  -1.0  -1.0  -1.0  0.1  -2.0  0.1\n"]
    parts = [SIH[: SIH.index(b"                        Begin CG")]]
    while len(parts) <= n_steps:
        step = rng.choice(common)
        draw = rng.random()
        if draw < 0.01:
            step = rng.choice(rare)
        elif draw < 0.02:
            step = _odd(step, rng)
        parts += [step] * rng.choice((1, 1, 2, 5))  # runs of one form, as in real outputs
    return b"".join(parts) + tail


SIH_TAIL = SIH[SIH.index(b"outcoor: Relaxed"):]
ABORT_TAIL = _around(ABORTED, b"scf:    1 ", b"SCF_NOT_CONV") + ABORTED[ABORTED.index(b"Stopping Program"):]


def _cuts(text: bytes) -> dict[str, bytes]:
    """The text cut at awkward places near its end (and half way)."""
    begin = text.rindex(b"Begin CG opt. move")
    row = text.rindex(b"   scf:    4 ")
    return {
        "whole": text,
        "mid-line": text[: row + 20],
        "after-begin-line": text[: text.index(b"\n", begin) + 1],
        "begin-without-newline": text[: text.index(b"\n", begin)],
        "inside-scf-block": text[: text.index(b"\n", row) + 1],
        "half-way": text[: len(text) // 2],
    }


RUNS = {"relax": long_run(1, 2600, SIH_TAIL), "aborted": long_run(2, 1300, ABORT_TAIL)}


@pytest.mark.parametrize("batch", [skim.BATCH, 48 * 1024])
@pytest.mark.parametrize("cut", ["whole", "mid-line", "after-begin-line", "begin-without-newline",
                                 "inside-scf-block", "half-way"])
@pytest.mark.parametrize("run", sorted(RUNS))
def test_long_generated_outputs_read_the_same_skimmed(tmp_path, monkeypatch, run, cut, batch):
    path = tmp_path / "long.out"
    path.write_bytes(_cuts(RUNS[run])[cut])
    monkeypatch.setattr(skim, "BATCH", batch)
    monkeypatch.setattr(skim, "HELD_MAX", 4 * batch)  # small batches also read held steps line by line
    expected = line_by_line(path)
    assert skimmed(path) == expected
    if cut == "whole":
        assert expected["steps"][0] > KEPT_RECORDS and expected["cycle_summaries"][0] > KEPT_RECORDS
        assert expected["steps"][1] > 1 and expected["cycle_summaries"][1] > 1  # thinned


def test_most_steps_of_a_long_run_are_skimmed(tmp_path, monkeypatch):
    path = tmp_path / "long.out"
    path.write_bytes(RUNS["relax"])
    skipped = []
    real = StdoutParser.skip_step

    def counting(self, n_lines, shape):
        done = real(self, n_lines, shape)
        skipped.append(done)
        return done

    monkeypatch.setattr(StdoutParser, "skip_step", counting)
    out = parse_stdout(path)
    not_kept = len(out.steps) - len(list(out.steps))
    assert sum(skipped) > not_kept / 4  # steps of rare forms and kept cycles are read line by line


def test_a_single_point_without_begin_lines_reads_the_same(tmp_path):
    body = _around(UNCONVERGED, b"scf:    1 ", b"SCF_NOT_CONV")
    path = tmp_path / "single.out"
    path.write_bytes(UNCONVERGED[: UNCONVERGED.index(body)] + body * 30 + ABORT_TAIL)
    assert skimmed(path) == line_by_line(path)


def test_a_step_form_is_measured_once_and_checked_for_its_iteration_numbers():
    step = _steps(SIH)[2]
    reset = step.replace(b"   scf:    3 ", b"   scf:    1 ", 1)
    shape, (getter, values) = skim.measure(step)
    other, _ = skim.measure(reset)
    assert other.n_cycles == shape.n_cycles + 1  # a number decides where a cycle starts
    assert getter(memoryview(reset)) != values
    assert shape.converged and "cell" in shape.fields and "max_force" in shape.fields
    assert skim.measure(BEGIN + _around(UNCONVERGED, b"scf:    1 ", b"SCF_NOT_CONV")) is None
