"""The SIESTA engines: SIESTA / TranSIESTA (optionally followed by TBtrans) and TBtrans alone.

Configuration (``StepSpec.config``)::

    {"fdf": "<fdf text>",
     "options": {"programs": ["siesta", "tbtrans"],   # default: ["siesta"] / ["tbtrans"]
                 "label": "h2o",                      # if the fdf has no SystemLabel
                 "parameter_unit": "V"}}              # when the chain gives no unit

``prepare`` writes ``<label>.fdf``: the fdf text with the molecule written as an fdf geometry
block (replacing any geometry in the text) and the chain parameter of the step (any fdf key,
e.g. ``TS.Voltage 0.25 eV``, in the chain's unit) replacing the same key in the text. A
``rotation`` chain sets no key: the agent turns the molecule of each step (``geometry``).

Commands: each program reads ``<label>.fdf`` on stdin and writes its stdout to a file. The
argv lists returned by :meth:`SiestaEngine.command` come from the templates (``{"siesta":
"mpirun -np {ntasks} siesta", "tbtrans": "tbtrans"}``; ``{ntasks}`` and ``{label}`` are
substituted); the redirections are given by :meth:`SiestaEngine.invocations` and recorded in
``siestaflow-step.json`` (``stdin``, ``stdout``), so an executor runs them without a shell.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from siestaflow_agent.geometry import ROTATION

from ..base import Engine, StepSpec, Validation
from . import fdf
from .extract import extract
from .layout import PROGRAMS, Invocation, StepLayout, stdout_files, write_layout
from .progress import progress
from .validate import validate

RAW_PATTERNS = (
    # electrode Green functions and TBtrans netCDF (often GBs)
    "*.TSGF*", "*.TBTGF", "*.TBT.nc", "*.TBT.Proj.nc", "*.TBT.SE.nc",
    # real-space grids
    "*.RHO", "*.DRHO", "*.RHOINIT", "*.VH", "*.VT", "*.TOCH", "*.LDOS", "*.grid.nc",
    # density and Hamiltonian matrices, wave functions
    "*.DM", "*.TSDE", "*.HSX", "*.TSHS", "*.WFSX",
    # large text and bookkeeping
    "*.PDOS", "*.PDOS.xml", "*.PDOS.KP", "*.ORB_INDX", "*.KP", "NON_TRIMMED_KP_LIST",
    "*.ion", "*.ion.nc", "*.ion.xml", "*.psdump", "INPUT_TMP.*", "*.alloc", "CLOCK",
    "PARALLEL_DIST", "BASIS_ENTHALPY", "BASIS_HARRIS_ENTHALPY", "*.BONDS", "*.BONDS_FINAL",
)
"""Large or bookkeeping files (``shared/siesta-outputs.md`` section 4). Files a following
chain step needs (``carry``, e.g. ``*.DM``/``*.TSDE``/``*.TSHS``) are listed too: the caller
stages :meth:`next_step_files` before deleting these."""

DEFAULT_LABEL = "siesta"


class SiestaEngine(Engine):
    """SIESTA or TranSIESTA, optionally followed by TBtrans on the same fdf."""

    name = "siesta"
    default_programs: tuple[str, ...] = ("siesta",)

    def layout(self, spec: StepSpec) -> StepLayout:
        """Label and programs of ``spec``."""
        options = spec.config.get("options") or {}
        programs = tuple(options.get("programs") or self.default_programs)
        unknown = [p for p in programs if p not in PROGRAMS]
        if unknown or not programs:
            raise ValueError(f"unknown programs {unknown}; choose from {PROGRAMS}")
        text = spec.config.get("fdf") or ""
        label = fdf.get_value(text, "SystemLabel") or options.get("label") or DEFAULT_LABEL
        return StepLayout(label=label.split()[0], programs=programs)

    def input_text(self, spec: StepSpec) -> str:
        """The fdf text of ``spec``: geometry block and chain parameter applied."""
        text = spec.config.get("fdf") or ""
        if not text.strip() and not spec.molecule:
            raise ValueError("config['fdf'] is empty")
        layout = self.layout(spec)
        overrides: dict[str, str] = {"SystemLabel": f"SystemLabel {layout.label}"}
        if spec.parameter and spec.parameter != ROTATION:  # a rotation turns the geometry block instead
            unit = spec.unit or (spec.config.get("options") or {}).get("parameter_unit")
            overrides[spec.parameter] = fdf.format_value(spec.parameter, spec.value, unit)
        geometry = ""
        if spec.molecule:
            geometry, replaced = fdf.geometry_block(spec.molecule, text)
            text = fdf.remove_keys(text, replaced)
        return fdf.override(text, overrides).rstrip("\n") + "\n" + geometry

    def prepare(self, spec: StepSpec, workdir: Path) -> None:
        """Write ``<label>.fdf`` and ``siestaflow-step.json`` into ``workdir``."""
        layout = self.layout(spec)
        (workdir / layout.fdf).write_text(self.input_text(spec), encoding="utf-8")
        write_layout(workdir, layout)

    def invocations(
        self, spec: StepSpec, workdir: Path, commands: dict[str, str]
    ) -> list[Invocation]:
        """Each program with its argv and stdin/stdout file names (relative to ``workdir``)."""
        layout = self.layout(spec)
        runs = []
        for program in layout.programs:
            template = commands.get(program, program)
            argv = shlex.split(template.format(ntasks=spec.ntasks, label=layout.label))
            runs.append(Invocation(program, argv, layout.fdf, layout.stdout(program)))
        return runs

    def command(self, spec: StepSpec, workdir: Path, commands: dict[str, str]) -> list[list[str]]:
        """The argv lists; stdin/stdout redirections come from :meth:`invocations`."""
        return [run.argv for run in self.invocations(spec, workdir, commands)]

    def validate(self, workdir: Path, exit_code: int | None) -> Validation:
        """Markers of completion and convergence in the stdout files (see ``validate``)."""
        return validate(Path(workdir), exit_code)

    def extract(self, workdir: Path) -> dict[str, Any]:
        """One pass over the stdout plus the small auxiliary files."""
        return extract(Path(workdir))

    def progress(self, workdir: Path) -> dict[str, Any] | None:
        """Current program, SCF iteration, energy and geometry step, from stdout tails."""
        outputs, programs = stdout_files(Path(workdir))
        for program in reversed(programs):
            path = outputs.get(program)
            if path is not None and path.is_file():
                info = progress(path) or {}
                return {"program": program, **info}
        return None

    def raw_files(self, workdir: Path) -> list[Path]:
        """Large files that may be deleted once the extracted results are on the server."""
        found: set[Path] = set()
        for pattern in RAW_PATTERNS:
            found.update(p for p in Path(workdir).glob(pattern) if p.is_file())
        return sorted(found)


class TbtransEngine(SiestaEngine):
    """TBtrans alone, on a device Hamiltonian staged in the work directory."""

    name = "tbtrans"
    default_programs = ("tbtrans",)
