"""Figure 5: extraction of a huge SIESTA stdout, beside sisl's reader and a plain line count.

The file is built in a temporary folder from a real relaxation (header once, its CG moves
with their SCF cycles repeated, the end once) and deleted afterwards. Each reader runs in a
child process of its own (``python -m bench.extraction MODE PATH``), which reports its
wall time and its peak resident memory (``VmHWM``) before and after reading, so imports
are not counted as the reader's memory. The readers alternate within a repeat.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import env
from bench.stats import median

SAMPLE = env.ROOT / "tests" / "agent" / "data" / "siesta-samples" / "sih_cg_relax_v4.1" / "sih.out"
READERS = ("lines", "agent", "sisl")


def build_stdout(folder: Path, size: int) -> Path:
    """A SIESTA stdout of about ``size`` bytes: the sample's header, its CG moves repeated, its end."""
    lines = SAMPLE.read_text().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if "Begin CG opt. move" in line)
    last = next(i for i, line in enumerate(lines) if line.startswith("outcoor: Relaxed"))
    head, block, tail = "".join(lines[:first]), "".join(lines[first:last]), "".join(lines[last:])
    chunk = block * 64
    path = folder / "sih.out"
    with path.open("w") as out:
        out.write(head)
        written = len(head)
        while written + len(tail) < size:
            out.write(chunk)
            written += len(chunk)
        out.write(tail)
    return path


def _rss_mb() -> float:
    """Peak resident memory of this process image. Not ``ru_maxrss``: Linux carries the
    parent's peak over the fork and exec into it (the bench process is large)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _read(mode: str, path: Path) -> dict:
    if mode == "lines":
        from siestaflow_agent.engines.siesta.stdout import open_text

        base = _rss_mb()
        t0 = time.perf_counter()
        with open_text(path) as handle:
            found = sum(1 for _ in handle)
    elif mode == "agent":
        from siestaflow_agent.engines.siesta.extract import extract

        base = _rss_mb()
        t0 = time.perf_counter()
        data = extract(path.parent)  # what the agent's SIESTA engine does, with the JSON it writes
        found = len(json.dumps(data))
    else:
        import sisl

        base = _rss_mb()
        t0 = time.perf_counter()
        sile = sisl.get_sile(str(path), cls=sisl.io.siesta.stdoutSileSiesta)
        energy = sile.read_energy()
        scf = sile.read_scf()  # the last SCF iteration of every geometry step
        found = len(energy) + len(scf)
    return {"seconds": time.perf_counter() - t0, "base_mb": base, "peak_mb": _rss_mb(), "found": found}


def measure(mode: str, path: Path, timeout: float) -> dict:
    """One reader in a child process; ``timed_out`` when it took longer than ``timeout``."""
    try:
        done = subprocess.run([sys.executable, "-m", "bench.extraction", mode, str(path)], cwd=env.ROOT,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"timed_out": True}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout)


def extraction(ctx) -> dict:
    """Figure 5."""
    folder = Path(tempfile.mkdtemp(prefix="extraction-", dir=env.OUT))
    try:
        path = build_stdout(folder, ctx.profile.extraction_bytes)
        size_mb = path.stat().st_size / 1e6
        runs: dict[str, list[dict]] = {mode: [] for mode in READERS}
        for _ in range(ctx.profile.repeats):
            for mode in READERS:
                if runs[mode] and (runs[mode][-1].get("timed_out") or (mode == "sisl" and size_mb > 200)):
                    continue  # sisl takes minutes on a big file: once; a reader that timed out: once
                runs[mode].append(measure(mode, path, ctx.profile.extraction_timeout))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out: dict = {"file_mb": round(size_mb, 1)}
    for mode, results in runs.items():
        seconds = median(r.get("seconds") for r in results)
        out[mode] = {"mb_per_s": round(size_mb / seconds, 1) if seconds else None,
                     "seconds": round(seconds, 2) if seconds else None,
                     "peak_mb": median(round(r["peak_mb"] - r["base_mb"], 1) for r in results if "peak_mb" in r),
                     "process_peak_mb": median(round(r["peak_mb"], 1) for r in results if "peak_mb" in r),
                     "runs": len(results),
                     "problem": next((r.get("error") or ("timed out" if r.get("timed_out") else None)
                                      for r in results if "seconds" not in r), None)}
    lines, agent = out["lines"]["seconds"], out["agent"]["seconds"]
    out["agent_vs_lines"] = round(agent / lines, 2) if lines and agent else None
    sisl = out["sisl"]["seconds"]
    out["sisl_vs_agent"] = round(sisl / agent, 2) if sisl and agent else None
    return out


if __name__ == "__main__":
    print(json.dumps(_read(sys.argv[1], Path(sys.argv[2]))))
