"""The agent's configuration: a TOML file, then ``SIESTAFLOW_AGENT_*`` environment overrides.

Everything is validated when the agent starts. Each problem raises :class:`ConfigError`
naming the offending key, so an operator can fix it from the message alone; the CLI turns
it into exit code 2. See ``agent/README.md`` for the reference of every key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import string
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "SIESTAFLOW_AGENT_"
EXECUTORS = ("local", "slurm")
TEMPLATE_FIELDS = {"ntasks", "python", "label"}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)i?[bB]?\s*$")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


class ConfigError(ValueError):
    """A missing or bad configuration value; ``key`` names it (e.g. ``"api_key"``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclasses.dataclass(frozen=True)
class SlurmConfig:
    """The ``[slurm]`` table: how steps are submitted with ``sbatch``.

    ``setup`` are shell lines run before the commands (``"module load siesta"``); a login
    shell for them may need ``interpreter = "/bin/bash -l"``.
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_limit: str | None = None
    ntasks: int = 1
    extra_sbatch: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    interpreter: str = "/bin/sh"


@dataclasses.dataclass(frozen=True)
class CleanupConfig:
    """The ``[cleanup]`` table: what is deleted from a step folder once the server has its results.

    Deleted: the engine's raw files, files matching ``patterns`` and (if ``size_threshold``
    is above 0) any file of at least that many bytes; never files matching ``keep``.
    """

    enabled: bool = True
    patterns: tuple[str, ...] = ()
    size_threshold: int = 0
    keep: tuple[str, ...] = ("stdout.txt", "stderr.txt", "exit_code", "job.sh", "*.json")


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """The whole validated configuration."""

    api_url: str
    api_key: str
    work_dir: Path
    heartbeat_interval: float = 10.0
    poll_interval: float = 2.0
    claim_wait: int = 20
    max_concurrent: int = 1
    ntasks: int = 1
    executor: str = "local"
    request_timeout: float = 30.0
    slurm: SlurmConfig = SlurmConfig()
    engines: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cleanup: CleanupConfig = CleanupConfig()
    programs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def step_ntasks(self) -> int:
        """MPI tasks per step: ``[slurm] ntasks`` on Slurm, ``ntasks`` for local runs."""
        return self.slurm.ntasks if self.executor == "slurm" else self.ntasks


_SCALARS: dict[str, type] = {
    "api_url": str, "api_key": str, "work_dir": str, "heartbeat_interval": float,
    "poll_interval": float, "claim_wait": int, "max_concurrent": int, "ntasks": int,
    "executor": str, "request_timeout": float, "api_key_file": str,
}
_SLURM_SCALARS: dict[str, type] = {"partition": str, "account": str, "qos": str, "time_limit": str,
                                   "ntasks": int, "interpreter": str}
_SLURM_LISTS = ("extra_sbatch", "setup")
_TABLES = {"slurm", "engines", "cleanup", "programs"}


def load(path: Path | None, environ: Mapping[str, str] | None = None) -> AgentConfig:
    """Read ``path`` (may be ``None``: environment only), apply overrides and validate."""
    environ = os.environ if environ is None else environ
    raw = _read_toml(path) if path is not None else {}
    _apply_env(raw, environ)
    return build(raw)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("config", f"file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc}") from None


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """``SIESTAFLOW_AGENT_<KEY>`` overrides a top-level key, ``..._SLURM_<KEY>`` a [slurm] one."""
    for key in _SCALARS:
        value = environ.get(ENV_PREFIX + key.upper())
        if value is not None:
            raw[key] = value
    for key in _SLURM_SCALARS:
        value = environ.get(f"{ENV_PREFIX}SLURM_{key.upper()}")
        if value is not None:
            raw.setdefault("slurm", {})[key] = value


def build(raw: dict[str, Any]) -> AgentConfig:
    """Validate the merged mapping ``raw`` into an :class:`AgentConfig`."""
    unknown = sorted(set(raw) - set(_SCALARS) - _TABLES)
    if unknown:
        raise ConfigError(unknown[0], "unknown key (check the spelling; see the README)")
    values = {key: _typed(key, raw[key], kind) for key, kind in _SCALARS.items() if key in raw}
    config = AgentConfig(
        api_url=_api_url(values.get("api_url")),
        api_key=_api_key(values),
        work_dir=_work_dir(values.get("work_dir")),
        heartbeat_interval=_at_least("heartbeat_interval", values.get("heartbeat_interval", 10.0), 0.05),
        poll_interval=_at_least("poll_interval", values.get("poll_interval", 2.0), 0.01),
        claim_wait=_between("claim_wait", values.get("claim_wait", 20), 0, 30),
        max_concurrent=_at_least("max_concurrent", values.get("max_concurrent", 1), 1),
        ntasks=_at_least("ntasks", values.get("ntasks", 1), 1),
        executor=_choice("executor", values.get("executor", "local"), EXECUTORS),
        request_timeout=_at_least("request_timeout", values.get("request_timeout", 30.0), 1),
        slurm=_slurm(_table(raw, "slurm")),
        engines=_engines(_table(raw, "engines")),
        cleanup=_cleanup(_table(raw, "cleanup")),
        programs=_programs(_table(raw, "programs")),
    )
    return config


def _typed(key: str, value: Any, kind: type) -> Any:
    """``value`` as ``kind``; environment values arrive as text and are converted here."""
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value.strip()
    if isinstance(value, bool):
        raise ConfigError(key, f"must be a number, got {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(key, f"must be {'an integer' if kind is int else 'a number'}, got {value!r}") from None


def _api_url(value: str | None) -> str:
    if not value:
        raise ConfigError("api_url", f"is required (set it in the file or {ENV_PREFIX}API_URL)")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError("api_url", f"must be an http(s) URL such as https://siestaflow.example.org, got {value!r}")
    return value.rstrip("/")


def _api_key(values: dict[str, Any]) -> str:
    key = values.get("api_key")
    if not key and values.get("api_key_file"):
        try:
            key = Path(values["api_key_file"]).read_text().strip()
        except OSError as exc:
            raise ConfigError("api_key_file", f"cannot read {values['api_key_file']}: {exc}") from None
    if not key:
        raise ConfigError("api_key", f"is required (set api_key or api_key_file, or {ENV_PREFIX}API_KEY)")
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        raise ConfigError("api_key", "must be a single word without spaces or control characters")
    return key


def _work_dir(value: str | None) -> Path:
    if not value:
        raise ConfigError("work_dir", f"is required (set it in the file or {ENV_PREFIX}WORK_DIR)")
    path = Path(value).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ConfigError("work_dir", f"{path} exists and is not a directory")
    return path


def _at_least(key: str, value: float, minimum: float) -> Any:
    if value < minimum:
        raise ConfigError(key, f"must be at least {minimum}, got {value}")
    return value


def _between(key: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ConfigError(key, f"must be between {low} and {high}, got {value}")
    return value


def _choice(key: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _table(raw: dict[str, Any], name: str) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(name, "must be a table ([" + name + "])")
    return table


def _slurm(table: dict[str, Any]) -> SlurmConfig:
    for key in table:
        if key not in _SLURM_SCALARS and key not in _SLURM_LISTS:
            raise ConfigError(f"slurm.{key}", "unknown key")
    values: dict[str, Any] = {k: _typed(f"slurm.{k}", v, _SLURM_SCALARS[k])
                              for k, v in table.items() if k in _SLURM_SCALARS}
    for key in _SLURM_LISTS:
        lines = table.get(key, [])
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise ConfigError(f"slurm.{key}", "must be a list of strings such as [\"--mem=8G\"]")
        values[key] = tuple(lines)
    _at_least("slurm.ntasks", values.get("ntasks", 1), 1)
    return SlurmConfig(**values)


def _engines(table: dict[str, Any]) -> dict[str, str]:
    """Command templates per engine, e.g. ``siesta = "mpirun -np {ntasks} siesta"``."""
    for name, template in table.items():
        key = f"engines.{name}"
        if not isinstance(template, str) or not template.strip():
            raise ConfigError(key, "must be a non-empty command template")
        try:
            shlex.split(template)
        except ValueError as exc:
            raise ConfigError(key, f"cannot be split into words: {exc}") from None
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        if fields - TEMPLATE_FIELDS:
            raise ConfigError(key, f"unknown placeholder {{{sorted(fields - TEMPLATE_FIELDS)[0]}}}; "
                                   f"allowed: {', '.join(sorted(TEMPLATE_FIELDS))}")
    return dict(table)


def _cleanup(table: dict[str, Any]) -> CleanupConfig:
    allowed = {field.name for field in dataclasses.fields(CleanupConfig)}
    for key in table:
        if key not in allowed:
            raise ConfigError(f"cleanup.{key}", "unknown key")
    values: dict[str, Any] = {}
    if "enabled" in table:
        if not isinstance(table["enabled"], bool):
            raise ConfigError("cleanup.enabled", "must be true or false")
        values["enabled"] = table["enabled"]
    for key in ("patterns", "keep"):
        if key in table:
            items = table[key]
            if not isinstance(items, list) or not all(isinstance(p, str) and p for p in items):
                raise ConfigError(f"cleanup.{key}", "must be a list of glob patterns such as [\"*.TSHS\"]")
            values[key] = tuple(items)
    if "size_threshold" in table:
        values["size_threshold"] = parse_size("cleanup.size_threshold", table["size_threshold"])
    return CleanupConfig(**values)


def parse_size(key: str, value: Any) -> int:
    """Bytes from an integer or a text such as ``"500M"``, ``"2 GiB"``."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if not match:
        raise ConfigError(key, f"must be a size in bytes or like \"500M\", \"2G\", got {value!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _programs(table: dict[str, Any]) -> dict[str, Any]:
    """``[programs.NAME]`` tables for the command engine, validated by its parser."""
    from siestaflow_agent.engines.command import parse_program

    programs = {}
    for name, body in table.items():
        try:
            programs[name] = parse_program(name, body)
        except ValueError as exc:
            raise ConfigError(f"programs.{name}", str(exc)) from None
    return programs


def to_toml(values: Mapping[str, Any]) -> str:
    """``values`` as the TOML text of a configuration file (what ``load`` reads back).

    Top-level scalars first, then one ``[table]`` per mapping (``[programs.NAME]`` for nested
    ones). For tools writing configurations (the demo's local agent, tests); strings are
    written as JSON strings, which are valid TOML basic strings.
    """
    lines = [f"{key} = {_toml_value(value)}" for key, value in values.items() if not isinstance(value, Mapping)]
    for key, value in values.items():
        if isinstance(value, Mapping):
            lines += _toml_table(key, value)
    return "\n".join(lines) + "\n"


def _toml_table(name: str, table: Mapping[str, Any]) -> list[str]:
    lines = ["", f"[{name}]"]
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, Mapping)]
    for key, value in table.items():
        if isinstance(value, Mapping):
            lines += _toml_table(f"{name}.{_toml_key(key)}", value)
    return lines


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML: {value!r}")
