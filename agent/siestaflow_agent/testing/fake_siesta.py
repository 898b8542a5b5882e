"""TEST DOUBLE: a stand-in for the ``siesta``/``tbtrans`` executables that replays a REAL
recorded run. It computes nothing. Never configure it on a production cluster.

Usage (in the work directory, like the real program)::

    python -m siestaflow_agent.testing.fake_siesta --case DIR [--program siesta|tbtrans] \\
        [--exit-code N] [--sleep S] < label.fdf > label.out

It reads the fdf on stdin like SIESTA does, writes the recorded stdout of the case in ``DIR``
(the ``*.out`` file whose header names the program; ``--output NAME`` picks one explicitly)
to its own stdout, copies the other recorded output files of the case into the current
directory (not inputs: ``*.fdf``, pseudopotentials, other ``*.out`` files, sub-directories)
and exits with the recorded exit code: 0 if the recorded stdout reaches ``>> End of run``,
1 otherwise (SIESTA's ``die``); ``--exit-code`` overrides it. ``--sleep S`` spreads the
writing of the stdout over about ``S`` seconds, to look like a running calculation.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from ..engines.siesta.layout import sniff_program

INPUT_SUFFIXES = (".fdf", ".psf", ".psml", ".out", ".xyz", ".STRUCT_IN")
CHUNKS = 50


def recorded_stdout(case: Path, program: str, name: str | None = None) -> Path:
    """The recorded stdout of ``program`` in ``case`` (``name`` if given)."""
    if name:
        return case / name
    for path in sorted(case.glob("*.out")):
        if sniff_program(path) == program:
            return path
    raise FileNotFoundError(f"no recorded {program} stdout in {case}")


def recorded_outputs(case: Path) -> list[Path]:
    """The recorded output files of ``case`` (everything but inputs and stdout files)."""
    return sorted(
        p for p in case.iterdir()
        if p.is_file() and not p.name.endswith(INPUT_SUFFIXES) and p.name != "README.md"
    )


def recorded_exit_code(stdout: Path) -> int:
    """0 when the recorded stdout reaches ``>> End of run``, else 1."""
    with open(stdout, "rb") as handle:
        return 0 if any(line.startswith(b">> End of run") for line in handle) else 1


def replay(stdout: Path, sink: object, seconds: float) -> None:
    """Copy ``stdout`` to ``sink`` (a binary stream), in chunks spread over ``seconds``."""
    data = stdout.read_bytes()
    pieces = CHUNKS if seconds > 0 else 1
    size = -(-len(data) // pieces) or 1
    for start in range(0, len(data), size):
        sink.write(data[start:start + size])  # type: ignore[attr-defined]
        sink.flush()  # type: ignore[attr-defined]
        if seconds > 0:
            time.sleep(seconds / pieces)


def main(argv: list[str] | None = None) -> int:
    """Run the test double; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", type=Path, required=True, help="recorded case directory")
    parser.add_argument("--program", choices=("siesta", "tbtrans"), default="siesta")
    parser.add_argument("--output", help="name of the recorded stdout file in the case")
    parser.add_argument("--exit-code", type=int, help="exit with this code instead")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds to spread output over")
    args = parser.parse_args(argv)
    if not sys.stdin.isatty():
        sys.stdin.read()  # consume the fdf like SIESTA does
    stdout = recorded_stdout(args.case, args.program, args.output)
    replay(stdout, sys.stdout.buffer, args.sleep)
    for path in recorded_outputs(args.case):
        shutil.copy2(path, Path.cwd() / path.name)
    return recorded_exit_code(stdout) if args.exit_code is None else args.exit_code


if __name__ == "__main__":
    sys.exit(main())
