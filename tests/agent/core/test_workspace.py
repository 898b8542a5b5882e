"""The work folder: isolation, verified staging, carry checksums, cleanup policy."""

from __future__ import annotations

import hashlib
import json

import pytest
from siestaflow_agent.workspace import (
    CARRY_MANIFEST,
    ChecksumMismatchError,
    Workspace,
    cleanup,
    safe_name,
    verify_carried,
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Downloads:
    """Serves files by URL like Client.download_file (the client's own checks are tested apart)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.calls: list[str] = []

    def __call__(self, url, dest, expected):
        self.calls.append(url)
        dest.write_bytes(self.files[url])
        return sha(self.files[url])


def test_every_calculation_attempt_and_step_gets_its_own_folder(tmp_path):
    ws = Workspace(tmp_path)
    folders = {ws.new_step_dir(c, a, s) for c in (1, 2) for a in (1, 2) for s in (0, 1)}
    assert len(folders) == 8
    assert ws.step_dir(1, 2, 1) == tmp_path / "calc-1" / "attempt-2" / "step-1"


def test_a_step_folder_is_never_reused(tmp_path):
    ws = Workspace(tmp_path)
    first = ws.new_step_dir(3, 1, 0)
    (first / "half-written.fdf").write_text("x")
    again = ws.new_step_dir(3, 1, 0)
    assert again == first and list(again.iterdir()) == []
    stale = [p for p in first.parent.iterdir() if p.name.startswith("step-0.stale-")]
    assert len(stale) == 1 and (stale[0] / "half-written.fdf").exists()


def test_staging_downloads_once_and_checks_the_checksum(tmp_path):
    ws = Workspace(tmp_path)
    fetch = Downloads({"/f/O.psf": b"oxygen"})
    entries = [{"name": "O.psf", "url": "/f/O.psf", "sha256": sha(b"oxygen")}]
    [path] = ws.stage(1, 1, entries, fetch)
    assert path.read_bytes() == b"oxygen"
    ws.stage(1, 1, entries, fetch)
    assert fetch.calls == ["/f/O.psf"]  # the verified copy is reused


def test_staging_refuses_a_file_with_the_wrong_checksum(tmp_path):
    ws = Workspace(tmp_path)
    fetch = Downloads({"/f/O.psf": b"tampered"})
    with pytest.raises(ChecksumMismatchError):
        ws.stage(1, 1, [{"name": "O.psf", "url": "/f/O.psf", "sha256": sha(b"oxygen")}], fetch)
    assert not (ws.attempt_dir(1, 1) / "inputs" / "O.psf").exists()


def test_staging_redownloads_a_cached_file_that_changed(tmp_path):
    ws = Workspace(tmp_path)
    fetch = Downloads({"/f/O.psf": b"oxygen"})
    entries = [{"name": "O.psf", "url": "/f/O.psf", "sha256": sha(b"oxygen")}]
    [path] = ws.stage(1, 1, entries, fetch)
    path.write_bytes(b"corrupted on disk")
    ws.stage(1, 1, entries, fetch)
    assert path.read_bytes() == b"oxygen" and len(fetch.calls) == 2


@pytest.mark.parametrize("name", ["../evil", "a/b", "", "..", "."])
def test_server_supplied_names_cannot_escape_the_folder(name):
    with pytest.raises(ValueError):
        safe_name(name)


def test_carry_copies_files_and_records_their_checksums(tmp_path):
    ws = Workspace(tmp_path)
    step0, step1 = ws.new_step_dir(1, 1, 0), ws.new_step_dir(1, 1, 1)
    (step0 / "h2o.DM").write_bytes(b"density matrix")
    (step0 / "h2o.TSDE").write_bytes(b"ts density")
    manifest = ws.carry(step0, step1, [step0 / "h2o.DM", step0 / "h2o.TSDE"])
    assert manifest["h2o.DM"] == {"sha256": sha(b"density matrix"), "size": 14, "from": "step-0"}
    assert json.loads((step1 / CARRY_MANIFEST).read_text()) == manifest
    assert verify_carried(step1) == []
    (step1 / "h2o.DM").write_bytes(b"rewritten by the program")  # a copy, so step 0 keeps its own
    assert (step0 / "h2o.DM").read_bytes() == b"density matrix"
    assert verify_carried(step1) == ["h2o.DM"]


def test_cleanup_deletes_raw_pattern_and_big_files_but_keeps_protected_ones(tmp_path):
    step = tmp_path / "step-0"
    step.mkdir()
    for name, size in {"h2o.TSGF": 100, "h2o.TSHS": 50, "huge.dat": 5000, "h2o.out": 6000,
                       "h2o.DM": 10, "small.txt": 10}.items():
        (step / name).write_bytes(b"x" * size)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"y")
    files, freed = cleanup(step, [step / "h2o.TSGF", outside], patterns=["*.TSHS"], size_threshold=1000,
                           keep=["*.out"], spare=["*.DM"])
    assert sorted(p.name for p in step.iterdir()) == ["h2o.DM", "h2o.out", "small.txt"]
    assert (files, freed) == (3, 5150)
    assert outside.exists()


def test_cleanup_counts_no_bytes_for_a_hard_linked_file(tmp_path):
    step = tmp_path / "s"
    step.mkdir()
    (step / "a.bin").write_bytes(b"x" * 100)
    (tmp_path / "link").hardlink_to(step / "a.bin")
    assert cleanup(step, [step / "a.bin"]) == (1, 0)
