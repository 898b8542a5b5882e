"""Writing analysis plots: matplotlib with the Agg backend, imported only when plotting.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot global state,
safe in threads) and saved as SVG and PNG side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PNG_DPI = 110


def new_figure(rows: int = 1, height: float = 3.6) -> tuple[Any, list[Any]]:
    """A figure with ``rows`` stacked axes (matplotlib imported here, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, height * rows), layout="constrained")
    axes = figure.subplots(rows, 1, squeeze=False)[:, 0]
    return figure, list(axes)


def save(figure: Any, outdir: Path, stem: str) -> list[str]:
    """Save ``figure`` as ``<stem>.svg`` and ``<stem>.png`` in ``outdir``; their names."""
    outdir.mkdir(parents=True, exist_ok=True)
    names = []
    for suffix, options in ((".svg", {}), (".png", {"dpi": PNG_DPI})):
        path = outdir / f"{stem}{suffix}"
        figure.savefig(path, **options)
        names.append(path.name)
    return names
