"""The "command" engine: any program an operator describes in the agent's TOML, no Python needed.

A program is a ``[programs.NAME]`` table::

    [programs.hello]
    command = "python3 /opt/hello.py input.txt"     # words; {ntasks} {workdir} {python} allowed
    inputs = { "input.txt" = "x = $x\\nlabel = $name\\n" }  # string.Template, or { file = "path" }
    success = "^DONE"                                 # regex on stdout that must match
    failure = ["ERROR: (?P<reason>.*)", { pattern = "not converged", class = "scf_not_converged" }]
    extract = ['energy = (?P<energy>\\S+)']           # named groups become values (last match)
    progress = 'iter (?P<scf_iteration>\\d+) E = (?P<energy>\\S+)'
    results_json = "results.json"                     # optional JSON object the program writes
    raw = ["*.bin"]                                   # deletable once the server has the results

The calculation selects it with ``config = {"program": "hello", "options": {"x": 1}}``. Template
values are the options plus ``name``, ``calculation_id``, ``step``, ``steps``, ``parameter``,
``value``, ``ntasks``, ``natoms``, ``xyz`` and the chain parameter itself when it is a valid name.
Commands and templates come only from the operator's file: the server supplies values, and
values are substituted into single words, never through a shell.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import string
import sys
from pathlib import Path
from typing import Any

from siestaflow_agent.engines.base import Engine, FailureClass, StepSpec, Validation

# Where every executor writes standard output; equal to schedulers.base.STDOUT_FILE (engines
# must not import the schedulers, which import the engines' FailureClass).
STDOUT_FILE = "stdout.txt"
_NAME = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
_KEYS = {"command", "inputs", "success", "failure", "extract", "progress", "results_json", "raw", "output"}


@dataclasses.dataclass(frozen=True)
class FailurePattern:
    """A stdout pattern that marks a failed run, with the failure class it implies."""

    regex: re.Pattern[str]
    failure_class: FailureClass = FailureClass.ABORTED


@dataclasses.dataclass(frozen=True)
class Program:
    """One configured program (see the module docstring for the TOML form)."""

    name: str
    command: tuple[str, ...]
    inputs: dict[str, str] = dataclasses.field(default_factory=dict)
    success: re.Pattern[str] | None = None
    failure: tuple[FailurePattern, ...] = ()
    extract: tuple[re.Pattern[str], ...] = ()
    progress: re.Pattern[str] | None = None
    results_json: str | None = None
    raw: tuple[str, ...] = ()
    output: str = STDOUT_FILE


def parse_program(name: str, table: Any) -> Program:
    """Validate one ``[programs.NAME]`` table; ``ValueError`` names the bad key."""
    if not isinstance(table, dict):
        raise ValueError("must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}")
    command = table.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ValueError("'command' is required (the command line to run)")
    return Program(
        name=name,
        command=tuple(shlex.split(command)),
        inputs={str(k): _template_text(k, v) for k, v in _mapping(table, "inputs").items()},
        success=_regex("success", table.get("success")),
        failure=tuple(_failure(item) for item in _list(table, "failure")),
        extract=tuple(_regex("extract", item) for item in _list(table, "extract")),
        progress=_regex("progress", table.get("progress")),
        results_json=_file_name("results_json", table.get("results_json")),
        raw=tuple(str(p) for p in _list(table, "raw")),
        output=_file_name("output", table.get("output")) or STDOUT_FILE,
    )


def _mapping(table: dict[str, Any], key: str) -> dict[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"'{key}' must be a table")
    return value


def _list(table: dict[str, Any], key: str) -> list[Any]:
    value = table.get(key, [])
    value = [value] if isinstance(value, str | dict) else value
    if not isinstance(value, list):
        raise ValueError(f"'{key}' must be a list")
    return value


def _template_text(file_name: str, value: Any) -> str:
    _file_name(f"inputs.{file_name}", file_name)
    if isinstance(value, dict) and set(value) == {"file"}:
        try:
            return Path(value["file"]).read_text()
        except OSError as exc:
            raise ValueError(f"inputs.{file_name}: cannot read {value['file']}: {exc}") from None
    if not isinstance(value, str):
        raise ValueError(f"inputs.{file_name} must be template text or {{ file = \"path\" }}")
    return value


def _regex(key: str, value: Any) -> re.Pattern[str] | None:
    if value is None:
        return None
    try:
        return re.compile(value, re.MULTILINE)
    except (re.error, TypeError) as exc:
        raise ValueError(f"'{key}' is not a valid regular expression: {exc}") from None


def _failure(item: Any) -> FailurePattern:
    if isinstance(item, str):
        return FailurePattern(_regex("failure", item))
    if not isinstance(item, dict) or "pattern" not in item:
        raise ValueError("'failure' items must be regexes or { pattern = ..., class = ... }")
    try:
        failure_class = FailureClass(item.get("class", FailureClass.ABORTED.value))
    except ValueError:
        choices = ", ".join(c.value for c in FailureClass)
        raise ValueError(f"failure class {item.get('class')!r} is not one of {choices}") from None
    return FailurePattern(_regex("failure", item["pattern"]), failure_class)


def _file_name(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or "/" in value or value in (".", ".."):
        raise ValueError(f"'{key}' must be a plain file name, got {value!r}")
    return value


class CommandEngine(Engine):
    """Runs configured programs; see the module docstring."""

    name = "command"

    def __init__(self, programs: dict[str, Program] | None = None) -> None:
        self.programs = dict(programs or {})

    def program(self, spec: StepSpec) -> Program:
        """The configured program the calculation names in ``config["program"]``."""
        name = spec.config.get("program")
        if name not in self.programs:
            known = ", ".join(sorted(self.programs)) or "none configured"
            raise ValueError(f"unknown program {name!r} (this agent has: {known})")
        return self.programs[name]

    def prepare(self, spec: StepSpec, workdir: Path) -> None:
        """Render every input template with the step's values (a missing value is an error)."""
        program = self.program(spec)
        values = template_values(spec)
        (workdir / "program.json").write_text(json.dumps({"program": program.name}))
        for file_name, text in program.inputs.items():
            try:
                rendered = string.Template(text).substitute(values)
            except KeyError as exc:
                raise ValueError(f"input {file_name}: no value for ${exc.args[0]}") from None
            except ValueError as exc:
                raise ValueError(f"input {file_name}: bad template: {exc}") from None
            (workdir / file_name).write_text(rendered)

    def command(self, spec: StepSpec, workdir: Path, commands: dict[str, str]) -> list[list[str]]:
        """The program's command, each word formatted with ``{ntasks}``, ``{workdir}``, ``{python}``."""
        fields = {"ntasks": spec.ntasks, "workdir": str(workdir), "python": sys.executable}
        fields.update({k: v for k, v in template_values(spec).items() if isinstance(v, str | int | float)})
        try:
            return [[word.format(**fields) for word in self.program(spec).command]]
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"command of program {self.program(spec).name!r}: {exc!r}") from None

    def validate(self, workdir: Path, exit_code: int | None) -> Validation:
        """Failure patterns first, then the exit code, the success pattern and the JSON file."""
        program = self._program_of(workdir)
        out = _read(workdir / program.output)
        for pattern in program.failure:
            match = _last(pattern.regex, out)
            if match:
                reason = match.groupdict().get("reason") or match.group(0)
                return Validation(False, pattern.failure_class, reason.strip())
        if exit_code not in (0, None):
            return Validation(False, FailureClass.ABORTED, f"{program.name} exited with code {exit_code}")
        if program.success and not program.success.search(out):
            reason = f"success pattern {program.success.pattern!r} not found in {program.output}"
            return Validation(False, FailureClass.MISSING_OUTPUT, reason)
        if program.results_json and _json_object(workdir / program.results_json) is None:
            reason = f"{program.results_json} is missing or not a JSON object"
            return Validation(False, FailureClass.MISSING_OUTPUT, reason)
        return Validation(True)

    def extract(self, workdir: Path) -> dict[str, Any]:
        """Named groups of the ``extract`` regexes (last match wins), merged with the JSON file."""
        program = self._program_of(workdir)
        out = _read(workdir / program.output)
        data: dict[str, Any] = {}
        for regex in program.extract:
            match = _last(regex, out)
            if match:
                data.update({k: _number(v) for k, v in match.groupdict().items() if v is not None})
        if program.results_json:
            data.update(_json_object(workdir / program.results_json) or {})
        return data

    def progress(self, workdir: Path) -> dict[str, Any] | None:
        """The last match of the ``progress`` regex, if the program has one."""
        program = self._program_of(workdir)
        if program.progress is None:
            return None
        match = _last(program.progress, _read(workdir / program.output))
        return {k: _number(v) for k, v in match.groupdict().items() if v is not None} if match else None

    def raw_files(self, workdir: Path) -> list[Path]:
        """Files matching the program's ``raw`` patterns."""
        program = self._program_of(workdir)
        return sorted({p for pattern in program.raw for p in workdir.glob(pattern) if p.is_file()})

    def _program_of(self, workdir: Path) -> Program:
        """The program a step folder was prepared for (recorded by :meth:`prepare`)."""
        name = json.loads((workdir / "program.json").read_text())["program"]
        if name not in self.programs:
            raise ValueError(f"program {name!r} is no longer configured")
        return self.programs[name]


def template_values(spec: StepSpec) -> dict[str, Any]:
    """The values a program's templates may use for ``spec`` (see the module docstring)."""
    values: dict[str, Any] = dict(spec.config.get("options") or {})
    molecule = spec.molecule or {}
    species, positions = molecule.get("species") or [], molecule.get("positions") or []
    values.update(
        name=spec.name, calculation_id=spec.calculation_id, step=spec.step_index,
        steps=spec.step_count, parameter=spec.parameter or "", value="" if spec.value is None else spec.value,
        ntasks=spec.ntasks, natoms=len(species),
        xyz="\n".join(f"{s} {x} {y} {z}" for s, (x, y, z) in zip(species, positions, strict=False)),
    )
    if spec.parameter and _NAME.match(spec.parameter):
        values[spec.parameter] = spec.value
    return values


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _last(regex: re.Pattern[str], text: str) -> re.Match[str] | None:
    matches = list(regex.finditer(text))
    return matches[-1] if matches else None


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _json_object(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
