"""Figures from the paper tables (matplotlib, Agg backend, PNG).

- ``fewshot_curves``: one panel per dataset and one for the average, accuracy against shots, one line per
  method with the spread over seeds as error bars, published averages dashed (as CoOp's Figure 3).
- ``base2new_bars``: one panel per dataset and one for the average, grouped bars base / new / H per method,
  the y-axis of each panel zoomed to its bars (a 2-point difference stays visible) and the value on each bar.

A method keeps its colour in every panel, in the table's method order, and the legend sits above the panels
(one row per four methods), where it covers nothing.

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


def _method_colors(methods) -> dict:
    """One colour per method (a published row shares its method's), in order of first appearance."""
    colors = {}
    for method in methods:
        base = method[: -len(PAPER_SUFFIX)] if method.endswith(PAPER_SUFFIX) else method
        colors.setdefault(base, f"C{len(colors) % 10}")
    return colors


def _legend_above(figure, axes) -> float:
    """One legend for the figure, above the panels; returns the fraction of the height the panels keep."""
    handles, labels = {}, []
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    columns = min(4, len(labels))
    rows = math.ceil(len(labels) / columns)
    height = figure.get_size_inches()[1]
    top = 1.0 - (0.3 * rows + 0.15) / height
    figure.legend([handles[label] for label in labels], labels, loc="upper center", ncol=columns, fontsize=8,
                  frameon=False, bbox_to_anchor=(0.5, 1.0))
    return top


def _zoomed_limits(lows: list, highs: list) -> tuple:
    """Y-limits around the bars' tops (error bars included) with room for their labels, within [0, 100]."""
    low, high = min(lows), max(highs)
    margin = max(1.0, 0.15 * (high - low))
    return max(0.0, low - 2 * margin), min(100.0, high + 1.5 * margin)


def _lay_out(figure, axes, panel_count: int):
    """Panels below the shared legend; returns the figure."""
    figure.tight_layout(rect=(0, 0, 1, _legend_above(figure, axes[:panel_count])))
    return figure


def _save(figure, path: str) -> str:
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
    return _save(fewshot_figure(table), path)


def fewshot_figure(table: Table):
    """The figure of a ``fewshot_table``."""
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
    colors = _method_colors(method for lines in panels.values() for method, _ in lines)
    for axis, (panel, lines) in zip(axes, panels.items()):
        for method, cells in lines:
            points = [(s, _value(c)) for s, c in zip(shots, cells) if _value(c) is not None]
            if not points:
                continue
            color = colors[method[: -len(PAPER_SUFFIX)] if method.endswith(PAPER_SUFFIX) else method]
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
    return _lay_out(figure, axes, len(panels))


def base2new_bars(table: Table, path: str) -> str:
    """Plot a ``base2new_table`` to ``path`` (PNG) as grouped base / new / H bars; returns the path."""
    return _save(base2new_figure(table), path)


def base2new_figure(table: Table):
    """The figure of a ``base2new_table``."""
    panels = OrderedDict()
    for dataset, method, base, new, harmonic, *_ in table.rows:
        if None in (base, new, harmonic):
            continue
        panels.setdefault(dataset, []).append((method, [_value(base), _value(new), _value(harmonic)]))
    if not panels:
        raise ValueError("base2new_bars: the table has no row with base, new and H")
    figure, axes = _grid(len(panels))
    metrics = ("base", "new", "H")
    colors = _method_colors(method for methods in panels.values() for method, _ in methods)
    for axis, (panel, methods) in zip(axes, panels.items()):
        width = 0.8 / len(methods)
        for index, (method, values) in enumerate(methods):
            positions = [m + (index - (len(methods) - 1) / 2) * width for m in range(len(metrics))]
            bars = axis.bar(positions, [v[0] for v in values], width, yerr=[v[1] for v in values], label=method,
                            color=colors[method], capsize=2)
            axis.bar_label(bars, fmt="%.1f", fontsize=6, padding=1)
        means = [v[0] for _, values in methods for v in values]
        spreads = [v[1] for _, values in methods for v in values]
        axis.set_ylim(*_zoomed_limits([m - e for m, e in zip(means, spreads)], [m + e for m, e in zip(means, spreads)]))
        axis.set_title(panel)
        axis.set_xticks(range(len(metrics)), metrics)
        axis.set_ylabel("accuracy (%)")
        axis.grid(axis="y", alpha=0.3)
    return _lay_out(figure, axes, len(panels))
