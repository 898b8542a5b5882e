"""A prediction beside the DFT result it predicts (shown on the calculation's page)."""

from __future__ import annotations

from mlmodels.models import Prediction


def dft_comparison(prediction: Prediction, extracted: dict | None) -> dict | None:
    """The prediction beside the DFT value it predicts: models that follow the example's
    answer (``{"predictions": [x], "target": "energies.total"}``) name their target, read
    here from the calculation's ``extracted`` data (its last step). None when the answer
    names no target or holds not exactly one number; ``dft`` is None until the result is in."""
    output = prediction.output if isinstance(prediction.output, dict) else {}
    values, target = output.get("predictions"), output.get("target")
    if not (isinstance(target, str) and isinstance(values, list) and len(values) == 1
            and isinstance(values[0], int | float) and not isinstance(values[0], bool)):
        return None
    dft = extracted or {}
    for part in target.split("."):
        dft = dft.get(part) if isinstance(dft, dict) else None
    dft = dft if isinstance(dft, int | float) and not isinstance(dft, bool) else None
    return {"target": target, "predicted": values[0], "dft": dft,
            "difference": None if dft is None else values[0] - dft}
