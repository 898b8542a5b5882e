"""The work folder: one folder per calculation, attempt and step, never reused.

Layout::

    <work>/calc-<id>/attempt-<n>/inputs/        downloaded input files and pseudopotentials
    <work>/calc-<id>/attempt-<n>/step-<k>/      one step of the chain (the job runs here)
    <work>/calc-<id>/attempt-<n>/analyses/      plots and tables of the analyses

Downloads are checked against their SHA-256 (a wrong file is never used); files carried
from step k to k+1 are copied (never linked: a program rewriting its restart file in place
must not change the previous step) and their checksums are recorded in ``carried.json``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

CARRY_MANIFEST = "carried.json"
Fetch = Callable[[str, Path, str | None], str]  # (url, dest, sha256) -> sha256, e.g. Client.download_file


class ChecksumMismatchError(ValueError):
    """A file's content does not match its recorded SHA-256."""


def sha256_file(path: Path) -> str:
    """The SHA-256 of ``path`` (hex)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def safe_name(name: str) -> str:
    """``name`` if it is a plain file name (server-supplied names must not escape a folder)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"unsafe file name {name!r}")
    return name


class Workspace:
    """Paths and file staging under one work folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def attempt_dir(self, calc_id: int, attempt: int) -> Path:
        """``<work>/calc-<id>/attempt-<n>``."""
        return self.root / f"calc-{int(calc_id)}" / f"attempt-{int(attempt)}"

    def step_dir(self, calc_id: int, attempt: int, step: int) -> Path:
        """``<work>/calc-<id>/attempt-<n>/step-<k>`` (may not exist yet)."""
        return self.attempt_dir(calc_id, attempt) / f"step-{int(step)}"

    def new_step_dir(self, calc_id: int, attempt: int, step: int) -> Path:
        """Create the step folder empty. A leftover from an interrupted preparation is moved
        aside (``step-<k>.stale-<time>``), never reused."""
        path = self.step_dir(calc_id, attempt, step)
        if path.exists():
            path.rename(path.with_name(f"{path.name}.stale-{time.time_ns()}"))
        path.mkdir(parents=True)
        return path

    def stage(self, calc_id: int, attempt: int, entries: Iterable[dict[str, Any]], fetch: Fetch) -> list[Path]:
        """Download ``entries`` (``name``, ``url``, ``sha256``) once per attempt into ``inputs/``.

        A file already there is reused only if its checksum still matches.
        """
        inputs = self.attempt_dir(calc_id, attempt) / "inputs"
        inputs.mkdir(parents=True, exist_ok=True)
        staged = []
        for entry in entries:
            dest = inputs / safe_name(entry["name"])
            expected = entry.get("sha256")
            if not (dest.exists() and expected and sha256_file(dest) == expected.lower()):
                actual = fetch(entry["url"], dest, expected)
                if expected and actual.lower() != expected.lower():
                    dest.unlink(missing_ok=True)
                    raise ChecksumMismatchError(f"{dest.name}: SHA-256 {actual} does not match {expected}")
            staged.append(dest)
        return staged

    @staticmethod
    def copy_in(files: Iterable[Path], stepdir: Path) -> None:
        """Copy staged input files into a step folder."""
        for path in files:
            shutil.copy2(path, stepdir / path.name)

    @staticmethod
    def carry(src: Path, dst: Path, files: Iterable[Path]) -> dict[str, dict[str, Any]]:
        """Copy ``files`` (inside ``src``) into ``dst``, verify each copy, record ``carried.json``."""
        manifest: dict[str, dict[str, Any]] = {}
        for path in files:
            relative = Path(path).resolve().relative_to(src.resolve())
            target = dst / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            before = sha256_file(path)
            shutil.copy2(path, target)
            if sha256_file(target) != before:
                raise ChecksumMismatchError(f"copy of {relative} from {src.name} is corrupt")
            manifest[str(relative)] = {"sha256": before, "size": target.stat().st_size, "from": src.name}
        (dst / CARRY_MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        return manifest


def verify_carried(stepdir: Path) -> list[str]:
    """Names of carried files in ``stepdir`` that are missing or changed since carried."""
    try:
        manifest = json.loads((stepdir / CARRY_MANIFEST).read_text())
    except (OSError, ValueError):
        return []
    bad = []
    for name, info in manifest.items():
        path = stepdir / name
        if not path.is_file() or sha256_file(path) != info["sha256"]:
            bad.append(name)
    return bad


def cleanup(stepdir: Path, raw: Iterable[Path], *, patterns: Iterable[str] = (), size_threshold: int = 0,
            keep: Iterable[str] = (), spare: Iterable[str] = ()) -> tuple[int, int]:
    """Delete raw files from a finished step folder; return ``(files, bytes freed)``.

    Candidates: ``raw`` (the engine's list), files matching ``patterns`` and, if
    ``size_threshold`` > 0, files at least that big. Files matching ``keep`` or ``spare``
    (e.g. what a later chain step still needs) stay, and so does anything outside ``stepdir``.
    """
    root = stepdir.resolve()
    protected = [*keep, *spare]
    candidates = {Path(p).resolve() for p in raw}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            big = size_threshold > 0 and path.stat().st_size >= size_threshold
            if big or _matches(path.relative_to(root), patterns):
                candidates.add(path.resolve())
    files = freed = 0
    for path in sorted(candidates):
        if not path.is_file() or not path.is_relative_to(root) or _matches(path.relative_to(root), protected):
            continue
        stat = path.stat()
        os.unlink(path)
        files += 1
        freed += stat.st_size if stat.st_nlink == 1 else 0  # a hard-linked copy frees nothing
    return files, freed


def _matches(relative: Path, patterns: Iterable[str]) -> bool:
    text = str(relative)
    return any(fnmatch.fnmatch(text, p) or fnmatch.fnmatch(relative.name, p) for p in patterns)
