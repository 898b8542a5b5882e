"""Extraction of the results of a SIESTA / TranSIESTA / TBtrans step into one JSON-ready dict.

The stdout is read once by :mod:`.stdout`; auxiliary files are small and read with sisl where
it has a good reader (:mod:`.files`). A broken auxiliary file never stops the extraction: its
error is listed under ``"errors"`` and the key is left out.

Top-level keys: ``program``, ``status``, ``system``, ``energies``, ``scf``, ``forces``,
``stress``, ``geometry``, ``relaxation``, ``spin`` (from the SIESTA stdout), ``eigenvalues``,
``bands``, ``dos``, ``pdos``, ``files`` (``messages``, ``normal_exit``, ``outvars``),
``transport`` (``ts_voltage``, ``tbtrans``, ``currents``, ``transmission``) and ``errors``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import files
from .layout import read_layout, stdout_files
from .stdout import parse_stdout
from .tbtrans import (
    electrode_names_from_file,
    parse_tbtrans_stdout,
    read_transmission,
    transmission_files,
)

AUXILIARY: tuple[tuple[str, str, Callable[[Path], dict[str, Any]]], ...] = (
    ("eigenvalues", "EIG", files.read_eig),
    ("bands", "bands", files.read_bands),
    ("dos", "DOS", files.read_dos),
    ("pdos", "PDOS.xml", files.read_pdos),
    ("pdos", "PDOS", files.read_pdos),
)
"""(result key, file extension, reader); the first existing file per key is read."""

RUN_FILES: tuple[tuple[str, str, Callable[[Path], dict[str, Any]]], ...] = (
    ("messages", "MESSAGES", files.read_messages),
    ("normal_exit", "0_NORMAL_EXIT", files.read_normal_exit),
    ("outvars", "OUTVARS.yml", files.read_outvars),
)


def extract(workdir: Path) -> dict[str, Any]:
    """Everything worth keeping from the step in ``workdir``."""
    workdir = Path(workdir)
    outputs, _ = stdout_files(workdir)
    result: dict[str, Any] = {"errors": []}
    siesta_out = outputs.get("siesta")
    if siesta_out is not None:
        result.update(parse_stdout(siesta_out).to_dict())
    label = _label(workdir)
    for key, extension, reader in AUXILIARY:
        if key not in result:
            path = _find(workdir, label, extension)
            if path is not None:
                _read_into(result, key, reader, path)
    result["files"] = {}
    for key, name, reader in RUN_FILES:
        if (workdir / name).is_file():
            _read_into(result["files"], key, reader, workdir / name, result["errors"])
    result["transport"] = {**result.get("transport", {}), **_transport(workdir, outputs, result)}
    return result


def _label(workdir: Path) -> str | None:
    layout = read_layout(workdir)
    return layout.label if layout else None


def _find(workdir: Path, label: str | None, extension: str) -> Path | None:
    """``<label>.<extension>`` or else the first ``*.<extension>`` in ``workdir``."""
    if label and (workdir / f"{label}.{extension}").is_file():
        return workdir / f"{label}.{extension}"
    matches = sorted(
        p for p in workdir.glob(f"*.{extension}") if p.is_file() and ".TBT." not in p.name
    )
    return matches[0] if matches else None


def _read_into(
    target: dict[str, Any],
    key: str,
    reader: Callable[[Path], dict[str, Any]],
    path: Path,
    errors: list[str] | None = None,
) -> None:
    """``target[key] = reader(path)``; a failure is recorded, never raised.

    Catching everything is deliberate: sisl raises many exception types on malformed files and
    one bad auxiliary file must not lose the rest of the extraction.
    """
    try:
        target[key] = reader(path)
    except Exception as error:  # noqa: BLE001 - see docstring
        (errors if errors is not None else target["errors"]).append(
            f"{path.name}: {type(error).__name__}: {error}"
        )


def _transport(
    workdir: Path, outputs: dict[str, Path | None], result: dict[str, Any]
) -> dict[str, Any]:
    """TBtrans currents and transmission curves (empty when TBtrans did not run)."""
    transport: dict[str, Any] = {}
    tbt_path = outputs.get("tbtrans")
    if tbt_path is not None:
        tbt = parse_tbtrans_stdout(tbt_path)
        transport["tbtrans"] = tbt.to_dict()
        transport["currents"] = transport["tbtrans"]["currents"]
        transport["voltage"] = tbt.voltage
    names = _electrodes(workdir, transport.get("tbtrans", {}).get("electrodes", []))
    curves = []
    for item in transmission_files(workdir, names):
        try:
            data = read_transmission(item["path"])
        except (OSError, ValueError, IndexError) as error:
            result["errors"].append(f"{item['path'].name}: {error}")
            continue
        curves.append({**{k: v for k, v in item.items() if k != "path"},
                       "file": item["path"].name, **data})
    if curves:
        transport["transmission"] = curves
        transport["electrodes"] = names
    return transport


def _electrodes(workdir: Path, from_stdout: list[str]) -> list[str]:
    """Electrode names from the step's fdf (or any fdf), else from the TBtrans stdout."""
    label = _label(workdir)
    candidates = [workdir / f"{label}.fdf"] if label else []
    candidates += sorted(workdir.glob("*.fdf"))
    for path in candidates:
        if path.is_file():
            names = electrode_names_from_file(path)
            if names:
                return names
    return list(from_stdout)
