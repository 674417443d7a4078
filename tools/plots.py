"""Figures from the paper tables (matplotlib, Agg backend, PNG).

- ``fewshot_curves``: one panel per dataset and one for the average, accuracy against shots, one line per
  method with the spread over seeds as error bars, published averages dashed (as CoOp's Figure 3).
- ``base2new_bars``: one panel per dataset and one for the average, grouped bars base / new / H per method.

Both read a ``tools.tables.Table`` so a figure always shows the numbers of the table printed beside it.
"""
import math
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)

from fileio.atomic import write_atomically  # noqa: E402
from tools.tables import Stat, Table  # noqa: E402

PAPER_SUFFIX = " (paper)"


def _grid(count: int, panel_size: float = 3.2):
    columns = min(4, count)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(panel_size * columns, panel_size * rows), squeeze=False)
    flat = axes.ravel()
    for axis in flat[count:]:
        axis.set_visible(False)
    return figure, flat


def _save(figure, path: str) -> str:
    figure.tight_layout()
    try:
        return write_atomically(path, lambda handle: figure.savefig(handle, format="png", dpi=110), binary=True)
    finally:
        plt.close(figure)


def _value(cell):
    if isinstance(cell, Stat):
        return cell.mean, cell.spread or 0.0
    if isinstance(cell, (int, float)):
        return float(cell), 0.0
    return None


def fewshot_curves(table: Table, path: str) -> str:
    """Plot a ``fewshot_table`` to ``path`` (PNG); returns the path."""
    shots = [int(header.split("-")[0]) for header in table.headers[2:]]
    panels = OrderedDict()
    for method, dataset, *cells in table.rows:
        panel = "Average" if dataset.startswith("Average") else dataset
        panels.setdefault(panel, []).append((method, cells))
    if "Average" in panels:
        panels.move_to_end("Average")
    if not panels:
        raise ValueError("fewshot_curves: the table has no rows")
    figure, axes = _grid(len(panels))
    colors = {}
    for axis, (panel, lines) in zip(axes, panels.items()):
        for method, cells in lines:
            points = [(s, _value(c)) for s, c in zip(shots, cells) if _value(c) is not None]
            if not points:
                continue
            base = method[: -len(PAPER_SUFFIX)] if method.endswith(PAPER_SUFFIX) else method
            color = colors.setdefault(base, f"C{len(colors) % 10}")
            xs, values = zip(*points)
            axis.errorbar(
                xs, [v[0] for v in values], yerr=[v[1] for v in values], label=method, color=color, marker="o",
                markersize=3, linestyle="--" if method.endswith(PAPER_SUFFIX) else "-", capsize=2,
            )
        axis.set_title(panel)
        axis.set_xscale("log", base=2)
        axis.set_xticks(shots, [str(s) for s in shots])
        axis.set_xlabel("shots per class")
        axis.set_ylabel("accuracy (%)")
        axis.grid(alpha=0.3)
    axes[len(panels) - 1].legend(fontsize=7)
    return _save(figure, path)


def base2new_bars(table: Table, path: str) -> str:
    """Plot a ``base2new_table`` to ``path`` (PNG) as grouped base / new / H bars; returns the path."""
    panels = OrderedDict()
    for dataset, method, base, new, harmonic, *_ in table.rows:
        if None in (base, new, harmonic):
            continue
        panels.setdefault(dataset, []).append((method, [_value(base), _value(new), _value(harmonic)]))
    if not panels:
        raise ValueError("base2new_bars: the table has no row with base, new and H")
    figure, axes = _grid(len(panels))
    metrics = ("base", "new", "H")
    for axis, (panel, methods) in zip(axes, panels.items()):
        width = 0.8 / len(methods)
        for index, (method, values) in enumerate(methods):
            positions = [m + (index - (len(methods) - 1) / 2) * width for m in range(len(metrics))]
            axis.bar(positions, [v[0] for v in values], width, yerr=[v[1] for v in values], label=method,
                     color=f"C{index % 10}", capsize=2)
        axis.set_title(panel)
        axis.set_xticks(range(len(metrics)), metrics)
        axis.set_ylabel("accuracy (%)")
        axis.grid(axis="y", alpha=0.3)
    axes[len(panels) - 1].legend(fontsize=7)
    return _save(figure, path)
