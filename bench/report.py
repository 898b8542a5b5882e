"""The one table of figures printed at the end of a run (results.json holds everything)."""

from __future__ import annotations

TARGETS = {
    ("end_to_end", "per_minute"): ">= 1500 /min",
    ("pickup", "running_p50_ms"): "< 1000 ms",
    ("claims", "handed_out_twice"): "0",
    ("heartbeats", "at_200.p99_ms"): "< 100 ms",
    ("extraction", "agent_vs_lines"): "<= 3x",
    ("extraction", "agent.peak_mb"): "< 200 MB",
    ("proxy", "overhead_p50_ms"): "< 3 ms",
}

ROWS = {
    "end_to_end": [("calculations per minute", "per_minute"),
                   ("created per minute (4 API clients)", "created_per_minute"),
                   ("creation to succeeded p50 ms", "p50_ms"),
                   ("creation to succeeded p95 ms", "p95_ms"), ("succeeded / created", "succeeded", "calculations")],
    "pickup": [("creation to running p50 ms", "running_p50_ms"), ("creation to running p95 ms", "running_p95_ms"),
               ("creation to claimed p50 ms", "claim_p50_ms")],
    "claims": [("claims per second (50 claimers)", "claims_per_s"), ("handed out twice", "handed_out_twice"),
               ("claim request p50 / p99 ms", "p50_ms", "p99_ms"), ("errors", "errors")],
    "heartbeats": [("200/s: p50 / p99 ms", "at_200.p50_ms", "at_200.p99_ms"),
                   ("200/s: achieved /s, errors", "at_200.achieved_per_s", "at_200.errors"),
                   ("1000/s: p50 / p99 ms", "at_1000.p50_ms", "at_1000.p99_ms"),
                   ("1000/s: achieved /s, errors", "at_1000.achieved_per_s", "at_1000.errors")],
    "extraction": [("file MB", "file_mb"), ("line count MB/s", "lines.mb_per_s"),
                   ("agent extraction MB/s", "agent.mb_per_s"), ("agent time / line count time", "agent_vs_lines"),
                   ("agent peak memory MB (over imports)", "agent.peak_mb"),
                   ("sisl MB/s", "sisl.mb_per_s"), ("sisl peak memory MB (over imports)", "sisl.peak_mb"),
                   ("sisl problem", "sisl.problem")],
    "proxy": [("overhead p50 / p99 ms", "overhead_p50_ms", "overhead_p99_ms"),
              ("direct p50 / p99 ms", "direct_p50_ms", "direct_p99_ms"),
              ("through siestaflow p50 / p99 ms", "proxy_p50_ms", "proxy_p99_ms"),
              ("GET /api/me/ (same client) p50 / p99 ms", "me_p50_ms", "me_p99_ms")],
}


def _get(data: dict, path: str):
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _rows(name: str, result: dict) -> list[tuple[str, str, str]]:
    if "error" in result or "skipped" in result:
        return [("", f"{'error' if 'error' in result else 'skipped'}: "
                     f"{result.get('error') or result.get('skipped')}"[:90], "")]
    if name == "pages":
        return _page_rows(result)
    rows = []
    for label, *paths in ROWS[name]:
        values = [_get(result, p) for p in paths]
        if all(v is None for v in values):
            continue
        target = next((TARGETS[(name, p)] for p in paths if (name, p) in TARGETS), "")
        rows.append((label, " / ".join("-" if v is None else str(v) for v in values), target))
    return rows


def _page_rows(result: dict) -> list[tuple[str, str, str]]:
    size = result.get("calculations")
    rows = [("generated", f"{size} calcs, {result.get('heartbeat_points')} heartbeat points", "")]
    for page, data in result.get("pages", {}).items():
        latency = data.get("status") or f"p50 {data.get('p50_ms')} / p95 {data.get('p95_ms')} ms"
        queries = f"queries {data.get('queries_at_100')} at 100, {data.get(f'queries_at_{size}')} at {size}"
        rows.append((page, f"{latency}; {queries}", "p95 < 300 ms, same queries"))
    return rows


def table(results: dict, profile) -> str:
    lines = []
    widths = (20, 38, 44, 26)
    header = ("figure", "measure", "value (median of repeats)", "target")
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for name, result in results.items():
        for i, (label, value, target) in enumerate(_rows(name, result)):
            cells = (name if i == 0 else "", label, value, target)
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(lines)
