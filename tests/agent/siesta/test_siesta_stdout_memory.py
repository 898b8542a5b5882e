"""The stdout parser streams: its memory does not grow with the size of the file."""

from __future__ import annotations

import tracemalloc

import pytest
from siesta_manifest import DATA
from siestaflow_agent.engines.siesta.records import KEPT_RECORDS, Thinned
from siestaflow_agent.engines.siesta.stdout import parse_stdout

GRAPHITE = DATA / "graphite_varcell_cg_v4.1" / "graphite_c6_full.out"
REPEATS = 13  # 13 x 4 MB of real CG steps: a ~50 MB output
PEAK_LIMIT = 48 * 1024 * 1024  # 8 MiB binary batches (skim.py), their digit-blind copy and flags


def _synthetic_output(path):
    """The real graphite output with its 100 CG steps repeated ``REPEATS`` times."""
    text = GRAPHITE.read_text()
    start = text.index("                        Begin CG opt. move =      0")
    end = text.index("outcoor: Relaxed atomic coordinates")
    with open(path, "w") as handle:
        handle.write(text[:start])
        for _ in range(REPEATS):
            handle.write(text[start:end])
        handle.write(text[end:])
    return path


def test_it_parses_a_50_mb_file_with_flat_memory(tmp_path):
    big = _synthetic_output(tmp_path / "big.out")
    size = big.stat().st_size
    assert size > 45_000_000
    tracemalloc.start()
    try:
        out = parse_stdout(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB file"
    # the manifest: 267 scf lines, 100 cycles and 100 CG moves in the original file
    assert out.n_scf_lines == 267 * REPEATS
    assert len(out.cycle_summaries) == 100 * REPEATS
    assert len(out.steps) == 100 * REPEATS
    assert out.total_energy == -631.131633 and out.relaxed is True


def test_it_keeps_a_bounded_evenly_spread_record_of_a_long_run(tmp_path):
    out = parse_stdout(_synthetic_output(tmp_path / "big.out"))
    kept = list(out.steps)
    assert len(out.steps) == 1300 and len(kept) <= KEPT_RECORDS
    assert kept[0].index == 0 and kept[-1] is out.steps.last  # the first and the latest step
    strides = {b.index - a.index for a, b in zip(kept[:-2], kept[1:-1], strict=True)}  # within each repeat of 0..99
    assert strides <= {out.steps.stride, out.steps.stride - 100}
    scf = out.to_dict()["scf"]
    assert scf["n_cycles"] == 1300 and len(scf["summaries"]) <= KEPT_RECORDS
    assert scf["n_unconverged"] == 0 and scf["all_converged"] is True


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 100, 1001])
def test_it_thins_to_the_cap_and_always_keeps_the_latest(n):
    record = Thinned(cap=8)
    for i in range(n):
        record.append(i)
    kept = list(record)
    assert len(record) == n and len(kept) <= 9  # the cap, and the latest beside it
    assert kept == sorted(set(kept))
    if n:
        assert kept[0] == 0 and kept[-1] == n - 1 == record.last
        assert all(i % record.stride == 0 for i in kept[:-1])
    if n > 8:
        assert record.stride > 1 and len(kept) >= 4  # still spread over the whole run


def test_it_reads_an_unchanged_output_once_for_validation_and_extraction(tmp_path):
    out = tmp_path / "sih.out"
    out.write_bytes((DATA / "sih_cg_relax_v4.1" / "sih.out").read_bytes())
    first = parse_stdout(out)
    assert parse_stdout(out) is first  # the same parse, not a second pass
    with out.open("a") as handle:
        handle.write("\\n")  # the file changed: parsed again
    assert parse_stdout(out) is not first
