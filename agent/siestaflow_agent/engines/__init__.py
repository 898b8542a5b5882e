"""The engines this agent can run, by name.

``REGISTRY`` maps an engine name (the calculation's ``engine``) to its :class:`Engine` class.
The command and PySCF engines are always there (PySCF itself is only imported by the job).
The SIESTA engines (``siesta``, ``tbtrans``) are imported on first use and optionally: if it fails to import (a missing
or broken dependency), the agent still runs the other engines and ``UNAVAILABLE`` says why.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from siestaflow_agent.engines.base import Engine
from siestaflow_agent.engines.command import CommandEngine
from siestaflow_agent.engines.pyscf_engine import PyscfEngine, pyscf_available

if TYPE_CHECKING:
    from siestaflow_agent.config import AgentConfig

REGISTRY: dict[str, type[Engine]] = {CommandEngine.name: CommandEngine, PyscfEngine.name: PyscfEngine}
OPTIONAL = {"siesta": "siestaflow_agent.engines.siesta", "tbtrans": "siestaflow_agent.engines.siesta"}
UNAVAILABLE: dict[str, str] = {}


def load_optional() -> None:
    """Import the optional engines once, recording failures in ``UNAVAILABLE``."""
    for name, module_name in OPTIONAL.items():
        if name in REGISTRY or name in UNAVAILABLE:
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # any import failure must leave the other engines usable
            UNAVAILABLE[name] = f"{type(exc).__name__}: {exc}"
            continue
        found = [v for v in vars(module).values()
                 if isinstance(v, type) and issubclass(v, Engine) and getattr(v, "name", "") == name]
        if found:
            REGISTRY[name] = found[0]
        else:
            UNAVAILABLE[name] = f"{module_name} defines no Engine named {name!r}"


def get(name: str) -> type[Engine]:
    """The engine class called ``name``; ``KeyError`` with the reason if there is none."""
    load_optional()
    if name in REGISTRY:
        return REGISTRY[name]
    if name in UNAVAILABLE:
        raise KeyError(f"engine {name!r} is unavailable: {UNAVAILABLE[name]}")
    raise KeyError(f"unknown engine {name!r} (known: {', '.join(sorted(REGISTRY))})")


def create(name: str, config: AgentConfig) -> Engine:
    """An instance of engine ``name`` set up from the agent's configuration."""
    cls = get(name)
    if issubclass(cls, CommandEngine):
        return cls(dict(config.programs))
    return cls()


def available(config: AgentConfig) -> list[str]:
    """The engines this agent can actually run now (announced in the heartbeat): SIESTA and
    TBtrans only when their command's program is found."""
    load_optional()
    names = []
    for name in sorted(REGISTRY):
        if name == CommandEngine.name and not config.programs:
            continue
        if name == PyscfEngine.name and not pyscf_available():
            continue
        if name in OPTIONAL and not runnable(config.engines.get(name, name)):
            continue  # e.g. no ``siesta`` on PATH: offering it would only make its calculations fail
        names.append(name)
    return names


def runnable(template: str) -> bool:
    """Are the programs a command template starts found (on PATH or as paths)?"""
    from siestaflow_agent.cli import executables, found_on_path

    programs = executables(template)
    return bool(programs) and all(found_on_path(p) for p in programs)
