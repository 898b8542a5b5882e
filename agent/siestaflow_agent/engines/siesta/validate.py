"""Is a finished SIESTA / TranSIESTA / TBtrans run valid? Decided from the real markers.

Order of the checks for a SIESTA stdout (see ``shared/siesta-outputs.md`` section 2):

1. no stdout, an empty one or one without a SIESTA header -> ``missing_output``;
2. ``Stopping Program`` (SIESTA called ``die``) -> ``timeout`` for ``OUT_OF_TIME``,
   ``scf_not_converged`` for ``SCF_NOT_CONV ... (required)``, ``geometry_not_converged`` for
   ``GEOM_NOT_CONV``, else ``aborted`` with the line printed before ``Stopping Program``;
3. no ``>> End of run`` and no ``Stopping Program`` -> ``killed`` from outside;
4. ``End of run`` without ``Job completed`` on a non-trunk build -> ``unknown``;
5. any SCF cycle that did not end converged -> ``scf_not_converged``, even with exit code 0
   (``SCF.MustConverge false`` runs end "normally");
6. a relaxation whose final coordinates are ``Final (unrelaxed)`` -> ``geometry_not_converged``
   (single points and MD are not relaxations).

A TBtrans stdout must show ``tbt: Completed`` and ``>> End of run``. The exit code is reported
in the details but the markers decide: MPI launchers often return non-zero after a complete run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..base import FailureClass, Validation
from .files import read_messages
from .layout import stdout_files
from .records import SiestaOutput
from .stdout import parse_stdout
from .tbtrans import parse_tbtrans_stdout

MAX_LISTED = 5


def validate(workdir: Path, exit_code: int | None) -> Validation:
    """The verdict on the run in ``workdir`` (all expected programs must be valid)."""
    workdir = Path(workdir)
    outputs, programs = stdout_files(workdir)
    if not programs:
        return _fail(FailureClass.MISSING_OUTPUT, "no SIESTA or TBtrans stdout in the work "
                     "directory", {"exit_code": exit_code})
    details: dict[str, Any] = {"exit_code": exit_code, "programs": list(programs)}
    for program in programs:
        path = outputs.get(program)
        if program == "siesta":
            verdict = validate_siesta(path, workdir, exit_code)
        else:
            verdict = validate_tbtrans(path)
        details[program] = verdict.details
        if not verdict.ok:
            return Validation(False, verdict.failure_class, verdict.reason, details)
    return Validation(True, None, "", details)


def _fail(failure: FailureClass, reason: str, details: dict[str, Any]) -> Validation:
    return Validation(ok=False, failure_class=failure, reason=reason, details=details)


def validate_siesta(
    path: Path | None, workdir: Path | None = None, exit_code: int | None = None
) -> Validation:
    """Validate one SIESTA/TranSIESTA stdout file (``workdir`` for ``MESSAGES``)."""
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return _fail(FailureClass.MISSING_OUTPUT, "SIESTA stdout missing or empty",
                     {"exit_code": exit_code})
    out = parse_stdout(path)
    details = {**_siesta_details(out, path, workdir), "exit_code": exit_code}
    if out.program is None and out.n_scf_lines == 0 and not out.end_of_run:
        return _fail(FailureClass.MISSING_OUTPUT, f"{path.name} is not a SIESTA output "
                     "(no header)", details)
    for check in (_check_abort, _check_killed, _check_completed, _check_scf, _check_geometry):
        verdict = check(out, details)
        if verdict is not None:
            return verdict
    return Validation(True, None, "", details)


def _siesta_details(out: SiestaOutput, path: Path, workdir: Path | None) -> dict[str, Any]:
    details: dict[str, Any] = {
        "stdout": path.name, "version": out.version, "completed": out.completed,
        "scf_cycles": len(out.cycle_summaries), "max_scf_iterations": out.max_scf_iterations,
        "dynamics": out.dynamics, "relaxed": out.relaxed, "max_force": out.max_force,
        "force_tolerance": out.force_tolerance_ev_ang,
    }
    messages = (workdir / "MESSAGES") if workdir else None
    if messages is not None and messages.is_file():
        try:
            details["messages_fatal"] = read_messages(messages)["fatal"]
        except (OSError, ValueError):
            pass
    return details


def _check_abort(out: SiestaOutput, details: dict[str, Any]) -> Validation | None:
    if not out.aborted:
        return None
    reason = out.abort_reason or "SIESTA stopped (Stopping Program)"
    details["abort_line"] = out.abort_line
    if out.out_of_time:
        return _fail(FailureClass.TIMEOUT, f"wall time exhausted (Max.Walltime): {reason}",
                     details)
    if any("SCF_NOT_CONV" in m for m in out.scf_not_conv_markers) and "SCF_NOT_CONV" in reason:
        return _fail(FailureClass.SCF_NOT_CONVERGED, f"aborted: {reason}", details)
    if out.geom_not_conv:
        return _fail(FailureClass.GEOMETRY_NOT_CONVERGED, f"aborted: {reason}", details)
    return _fail(FailureClass.ABORTED, f"SIESTA stopped: {reason}", details)


def _check_killed(out: SiestaOutput, details: dict[str, Any]) -> Validation | None:
    if out.end_of_run:
        return None
    where = _last_position(out)
    exit_code = details.get("exit_code")
    suffix = f" (exit code {exit_code})" if exit_code is not None else ""
    return _fail(FailureClass.KILLED, f"output ends without '>> End of run' or "
                 f"'Stopping Program' after {out.n_lines} lines{where}: killed from outside "
                 f"(wall time, memory, node failure){suffix}", details)


def _last_position(out: SiestaOutput) -> str:
    cycle = out.last_cycle
    if cycle is None:
        return ""
    step = out.steps.last.index if out.steps else 0  # the last cycle is of the latest step
    return f", in {cycle.kind} iteration {cycle.last_iteration} of geometry step {step}"


def _check_completed(out: SiestaOutput, details: dict[str, Any]) -> Validation | None:
    if out.completed:
        return None
    return _fail(FailureClass.UNKNOWN, "'>> End of run' without 'Job completed' "
                 f"(version {out.version})", details)


def _check_scf(out: SiestaOutput, details: dict[str, Any]) -> Validation | None:
    bad = out.unconverged_cycles()
    if not bad:
        return None
    details["unconverged_cycles"] = bad[:MAX_LISTED]
    first = bad[0]
    marker = first["marker"] or "no 'SCF cycle converged' line"
    reason = (f"SCF not converged in {out.n_unconverged} of {len(out.cycle_summaries)} cycle(s); "
              f"first: {first['kind']} cycle {first['index']} stopped after "
              f"{first['iterations']} iterations (max {out.max_scf_iterations}): {marker}")
    return _fail(FailureClass.SCF_NOT_CONVERGED, reason, details)


def _check_geometry(out: SiestaOutput, details: dict[str, Any]) -> Validation | None:
    if not out.is_relaxation:
        return None
    relaxed = out.relaxed
    tolerance = out.force_tolerance_ev_ang
    if relaxed is None and out.max_force is not None and tolerance is not None:
        relaxed = out.max_force <= tolerance
    if relaxed and not out.geom_not_conv:
        return None
    force = f"max force {out.max_force} eV/Ang vs tolerance {tolerance} eV/Ang"
    header = out.coordinates_header or "no final coordinates"
    return _fail(FailureClass.GEOMETRY_NOT_CONVERGED, f"relaxation not converged after "
                 f"{len(out.steps)} step(s): {header.strip()}; {force}", details)


def validate_tbtrans(path: Path | None) -> Validation:
    """Validate one TBtrans stdout file."""
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return _fail(FailureClass.MISSING_OUTPUT, "TBtrans stdout missing or empty", {})
    out = parse_tbtrans_stdout(path)
    details = {"stdout": path.name, "version": out.version, "completed": out.completed}
    if not out.is_tbtrans:
        return _fail(FailureClass.MISSING_OUTPUT, f"{path.name} is not a TBtrans output",
                     details)
    if out.aborted:
        return _fail(FailureClass.ABORTED, f"TBtrans stopped: {out.abort_reason}", details)
    if not out.end_of_run:
        return _fail(FailureClass.KILLED, "TBtrans output ends without '>> End of run': "
                     "killed from outside", details)
    if not out.completed_line:
        return _fail(FailureClass.UNKNOWN, "TBtrans: '>> End of run' without "
                     "'tbt: Completed'", details)
    return Validation(True, None, "", details)
