#!/usr/bin/env python3
"""Fit a ridge regression of a calculation's total energy on its composition.

Reads siestaflow's dataset export (``GET /api/datasets/export/?format=jsonl``: one succeeded
calculation per line, with its ``structure`` and the extracted ``results`` of each step),
takes each calculation's element counts as features and the value at ``--target`` (a dotted
path into a result's ``data``; the last step that has it) as the label, and writes the fitted
model to ``OUT/model.json`` for the ``serve`` program of this folder.

Energies are extensive, so a linear model of counts, E ≈ b + Σ n_e·ε_e, is a fair first
baseline: ε_e comes out close to an atomic reference energy of element e.

    python3 train.py export.jsonl -o model/        # needs numpy only

It prints a ``dataset_snapshot`` (what it was trained on: the file's sha256, rows used and
skipped) to store with the model when registering it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np


def target_value(data: dict, path: str):
    """``data["energies"]["total"]`` for path ``energies.total`` (None when absent or not a number)."""
    node = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def label(record: dict, path: str):
    """The target of the calculation's last step that reports it (steps in order; chain-level last)."""
    found = None
    for result in record.get("results") or []:
        value = target_value(result.get("data") or {}, path)
        if value is not None:
            found = value
    return found


def read_export(path: Path, target: str) -> tuple[list[Counter], list[float], int]:
    """Compositions and labels of the usable rows, and how many rows were skipped."""
    compositions, labels, skipped = [], [], 0
    with path.open() as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            species = (record.get("structure") or {}).get("species")
            y = label(record, target)
            if not species or y is None:
                skipped += 1
                continue
            compositions.append(Counter(species))
            labels.append(y)
    return compositions, labels, skipped


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Weights and intercept minimising |y - Xw - b|² + alpha·|w|² (the intercept is not penalised)."""
    x_mean, y_mean = x.mean(axis=0), y.mean()
    xc, yc = x - x_mean, y - y_mean
    weights = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    return weights, float(y_mean - x_mean @ weights)


def rmse(x, y, weights, bias) -> float | None:
    return float(np.sqrt(np.mean((x @ weights + bias - y) ** 2))) if len(y) else None


def train(export: Path, out: Path, *, target: str, alpha: float, test_fraction: float, seed: int) -> dict:
    compositions, labels, skipped = read_export(export, target)
    if len(labels) < 2:
        raise SystemExit(f"{export}: {len(labels)} usable rows (need 2 or more with structure and {target})")
    elements = sorted({e for c in compositions for e in c})
    x = np.array([[c.get(e, 0) for e in elements] for c in compositions], dtype=float)
    y = np.array(labels)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(len(y) * test_fraction) if len(y) >= 5 else 0
    test, fit = order[:n_test], order[n_test:]
    weights, bias = fit_ridge(x[fit], y[fit], alpha)
    model = {
        "kind": "ridge-composition",
        "target": target,
        "elements": elements,
        "weights": [float(w) for w in weights],
        "bias": bias,
        "alpha": alpha,
        "metrics": {"rows": len(y), "train_rows": len(fit), "test_rows": len(test),
                    "train_rmse": rmse(x[fit], y[fit], weights, bias),
                    "test_rmse": rmse(x[test], y[test], weights, bias)},
        "dataset_snapshot": {"source": "siestaflow dataset export (jsonl)", "file": export.name,
                             "sha256": hashlib.sha256(export.read_bytes()).hexdigest(),
                             "rows_used": len(y), "rows_skipped": skipped,
                             "calculation_ids": sorted(_ids(export))},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.json").write_text(json.dumps(model, indent=2) + "\n")
    return model


def _ids(export: Path) -> set[int]:
    with export.open() as f:
        return {json.loads(line)["id"] for line in f if line.strip()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="the JSONL dataset export of siestaflow")
    parser.add_argument("-o", "--out", type=Path, default=Path("model"), help="folder for model.json")
    parser.add_argument("--target", default="energies.total", help="dotted path into a result's data")
    parser.add_argument("--alpha", type=float, default=1e-3, help="ridge penalty")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="rows held out to report test RMSE")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = train(args.export, args.out, target=args.target, alpha=args.alpha,
                  test_fraction=args.test_fraction, seed=args.seed)
    print(json.dumps({"metrics": model["metrics"],
                      "weights": dict(zip(model["elements"], model["weights"], strict=True)),
                      "bias": model["bias"]}, indent=2))
    snapshot = {k: v for k, v in model["dataset_snapshot"].items() if k != "calculation_ids"}
    print("dataset_snapshot to register with the model:", json.dumps(snapshot), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
