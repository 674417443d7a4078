"""Paper tables from run folders: mean +- std over seeds, base / new / H, averages, published numbers.

Conventions (stated in every table's notes):
- A cell is the mean over seeds +- the population standard deviation (``np.std``, ddof=0), as CoOp's
  ``parse_test_res.py`` computes it; ``ci95=True`` gives 1.96 * std / sqrt(n) instead, as its ``--ci95``.
- Base-to-new: per dataset, H = 2 * B * N / (B + N) from the mean base and mean new accuracies (not the mean
  of per-seed H). The Average row holds the mean over datasets of base and of new, and H of those two means:
  this is how CoCoOp, MaPLe, PromptSRC and ProMetaR compute their average H (e.g. CoOp 82.69 / 63.22 -> 71.66).
  Base accuracy is read from ``test_base`` runs when there are any, else from the test at the end of
  ``train_base`` (CoCoOp's protocol).
- Averages are means over datasets of the per-dataset means. Their +- is the std over seeds of the
  per-seed average, shown only when every dataset has the same seeds. A row averaging fewer datasets than
  the protocol has is labelled ``Average (k datasets)``: it is not comparable with the papers' average.
- Transfer protocols (cross-dataset, DG, test-time): the average is over targets (ImageNet excluded).
- Rows ``<method> (paper)`` and the ``(paper)`` columns come from ``tools/reference/*.csv``. A published
  average is shown only beside an average over all of the paper's datasets (never beside the toy world's).
"""
import csv
import io
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np
from tabulate import tabulate

from tools import names, reference
from fileio.atomic import write_text_atomically
from tools.protocols import FOLDERS, match_folder
from tools.results import RunResult, find_run_dirs, read_run

STD_NOTE = "mean +- std over seeds; std is the population std (np.std, ddof=0) as in CoOp's parse_test_res.py"
CI_NOTE = "mean +- 95% confidence interval over seeds (1.96 * std / sqrt(n)), as CoOp's --ci95"


@dataclass(frozen=True)
class Stat:
    """Mean and spread (std or ci95) of one cell's values, in percent."""

    mean: float
    spread: Optional[float]
    n: int

    def __str__(self) -> str:
        if self.spread is None or self.n < 2:
            return f"{self.mean:.2f}"
        return f"{self.mean:.2f} +- {self.spread:.2f}"


def summarize(values: Iterable[float], ci95: bool = False) -> Stat:
    """Mean and population std (or ci95) of ``values``, as CoOp's parse_test_res.py."""
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        raise ValueError("summarize: no values")
    std = float(np.std(array))
    spread = 1.96 * std / np.sqrt(array.size) if ci95 else std
    return Stat(float(np.mean(array)), spread, int(array.size))


def harmonic_mean(base: float, new: float) -> float:
    """H = 2 * base * new / (base + new), the base-to-new summary (0 when both are 0)."""
    return 0.0 if base + new == 0 else 2.0 * base * new / (base + new)


def _markdown_cell(cell) -> str:
    if cell is None:
        return ""
    return f"{cell:.2f}" if isinstance(cell, float) else str(cell)


@dataclass
class Table:
    """A titled table whose cells are strings, numbers, Stats or None (blank)."""

    title: str
    headers: list
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def to_markdown(self) -> str:
        cells = [[_markdown_cell(cell) for cell in row] for row in self.rows]
        body = tabulate(cells, headers=self.headers, tablefmt="github", disable_numparse=True)
        notes = "".join(f"\n- {note}" for note in self.notes)
        return f"### {self.title}\n\n{body}\n{notes}\n"

    def to_csv(self) -> str:
        """CSV with a ``<column>_std`` column (``_ci95`` for ci95 tables) after each column holding Stats."""
        stat_columns = [any(isinstance(row[i], Stat) for row in self.rows) for i in range(len(self.headers))]
        suffix = "_ci95" if any(CI_NOTE == note for note in self.notes) else "_std"
        header = []
        for name, has_stat in zip(self.headers, stat_columns):
            header += [name, name + suffix] if has_stat else [name]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        for row in self.rows:
            line = []
            for cell, has_stat in zip(row, stat_columns):
                if isinstance(cell, Stat):
                    line += [f"{cell.mean:.4f}", "" if cell.spread is None or cell.n < 2 else f"{cell.spread:.4f}"]
                else:
                    value = "" if cell is None else f"{cell:.4f}" if isinstance(cell, float) else cell
                    line += [value, ""] if has_stat else [value]
            writer.writerow(line)
        return buffer.getvalue()

    def render(self, fmt: str) -> str:
        if fmt not in ("md", "csv"):
            raise ValueError(f"unknown table format {fmt!r}: expected md or csv")
        return self.to_markdown() if fmt == "md" else self.to_csv()


@dataclass(frozen=True)
class Run:
    """A run folder's result with the fields its path encodes (see tools.protocols.FOLDERS)."""

    kind: str
    fields: dict
    result: RunResult

    @property
    def accuracy(self) -> float:
        return self.result.accuracy

    @property
    def method_key(self) -> tuple:
        return (self.fields["trainer"], self.fields["cfg"], self.fields.get("variant", ""))

    def get(self, name: str, default=None):
        value = self.fields.get(name, default)
        return int(value) if name in ("shots", "seed") and value is not None else value


def classify(relative_path: str) -> Optional[tuple]:
    """(scheme, fields) of a run folder path relative to the output root, None if it follows no scheme."""
    for kind in FOLDERS:
        fields = match_folder(kind, relative_path)
        if fields is not None:
            return kind, fields
    return None


def scan(output_root: str, test_log: bool = False) -> list[Run]:
    """Every run under ``output_root`` that follows a protocol folder scheme and holds a result."""
    if not os.path.isdir(output_root):
        raise FileNotFoundError(f"{output_root}: output folder not found")
    runs = []
    for run_dir in find_run_dirs(output_root):
        found = classify(os.path.relpath(run_dir, output_root))
        result = read_run(run_dir, test_log) if found else None
        if result is not None:
            runs.append(Run(found[0], found[1], result))
    return runs


def method_labels(runs: list[Run], cell_fields: tuple) -> dict[tuple, str]:
    """A label per (trainer, cfg, variant): the trainer name, with the variant and then the config added
    only where two settings of one trainer would otherwise share a table cell."""
    candidates = (
        lambda t, c, v: t,
        lambda t, c, v: f"{t} [{v}]" if v else t,
        lambda t, c, v: f"{t} [{c}{', ' + v if v else ''}]",
    )
    for label_of in candidates:
        keys_per_cell = defaultdict(set)
        for run in runs:
            cell = (label_of(*run.method_key),) + tuple(run.get(name) for name in cell_fields)
            keys_per_cell[cell].add(run.method_key)
        if all(len(keys) == 1 for keys in keys_per_cell.values()):
            break
    return {run.method_key: label_of(*run.method_key) for run in runs}


def _filter(runs: list[Run], kinds: tuple, trainers: Optional[Iterable[str]]) -> list[Run]:
    wanted = set(trainers) if trainers else None
    return [r for r in runs if r.kind in kinds and (wanted is None or r.fields["trainer"] in wanted)]


def _by_seed(runs: list[Run]) -> dict:
    return {run.get("seed"): run.accuracy for run in runs}


def _average(per_dataset: dict, ci95: bool) -> Stat:
    """Mean over datasets of their mean; spread over seeds of the per-seed average when seeds agree."""
    means = [summarize(seeds.values()).mean for seeds in per_dataset.values()]
    seed_sets = {tuple(sorted(seeds, key=str)) for seeds in per_dataset.values()}
    if len(seed_sets) == 1:
        seeds = next(iter(seed_sets))
        if len(seeds) > 1:
            per_seed = [np.mean([values[s] for values in per_dataset.values()]) for s in seeds]
            stat = summarize(per_seed, ci95)
            return Stat(float(np.mean(means)), stat.spread, stat.n)
    return Stat(float(np.mean(means)), None, 1)


def _average_label(count: int, expected: int) -> str:
    return "Average" if count >= expected else f"Average ({count} datasets)"


def _notes(ci95: bool, *extra: str) -> list[str]:
    return [CI_NOTE if ci95 else STD_NOTE, *extra]


def _covers(datasets: Iterable[str], paper_datasets: Iterable[str]) -> bool:
    """Whether ``datasets`` include every dataset of a paper average (only then is it comparable)."""
    return {names.display_name(d) for d in paper_datasets} <= {names.display_name(d) for d in datasets}


def _trainer_of(label: str) -> str:
    return label.split(" [")[0]


def _in_datasets(runs: list[Run], datasets) -> list[Run]:
    """Runs on ``datasets`` (any name form); with None, runs on anything but the ImageNet variants."""
    if datasets is None:
        excluded = {names.display_name(d) for d in names.DG_TARGETS}
        return [r for r in runs if names.display_name(r.fields["dataset"]) not in excluded]
    wanted = {names.display_name(d) for d in datasets}
    return [r for r in runs if names.display_name(r.fields["dataset"]) in wanted]


def fewshot_table(runs: list[Run], trainers=None, ci95: bool = False, datasets=None) -> Table:
    """Per method, per dataset accuracy at each number of shots, the average, and the paper's average.

    Zero-shot runs (``zeroshot`` folders) fill every shots column with their single value.
    """
    selected = _in_datasets(_filter(runs, ("fewshot", "zeroshot"), trainers), datasets)
    labels = method_labels(selected, ("dataset", "shots"))
    shots_list = sorted({r.get("shots") for r in selected if r.kind == "fewshot"}) or list(names.FEWSHOT_SHOTS)
    cells = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run in selected:
        for shots in [run.get("shots")] if run.kind == "fewshot" else shots_list:
            cells[labels[run.method_key]][run.fields["dataset"]][shots].append(run)
    table = Table(
        "Few-shot accuracy (%)",
        ["Method", "Dataset"] + [f"{s}-shot" for s in shots_list],
        notes=_notes(ci95, "Average: mean over datasets; paper rows: tools/reference/few_shot_avg.csv"),
    )
    published = reference.few_shot_average()
    datasets_expected = datasets or names.FEWSHOT_DATASETS
    for label in sorted(cells):
        method_datasets = sorted(cells[label], key=names.order_key)
        for dataset in method_datasets:
            row = [label, names.display_name(dataset)]
            row += [summarize((r.accuracy for r in cells[label][dataset][s]), ci95) if cells[label][dataset][s]
                    else None for s in shots_list]
            table.rows.append(row)
        average_row = [label, _average_label(len(method_datasets), len(datasets_expected))]
        for shots in shots_list:
            per_dataset = {d: _by_seed(cells[label][d][shots]) for d in method_datasets if cells[label][d][shots]}
            complete = len(per_dataset) == len(method_datasets)
            average_row.append(_average(per_dataset, ci95) if complete else None)
        table.rows.append(average_row)
        paper = published.get(_trainer_of(label)) if _covers(method_datasets, names.FEWSHOT_DATASETS) else None
        if paper:
            table.rows.append([f"{_trainer_of(label)} (paper)", "Average"] + [paper.get(s) for s in shots_list])
    return table


def base2new_table(runs: list[Run], trainers=None, ci95: bool = False, datasets=None) -> Table:
    """Per dataset and method: base, new and H, beside the published numbers; then the averages."""
    selected = _in_datasets(_filter(runs, ("base2new",), trainers), datasets)
    datasets_expected = datasets or names.BASE2NEW_DATASETS
    labels = method_labels(selected, ("dataset", "shots", "stage"))
    stages = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run in selected:
        stages[labels[run.method_key]][run.fields["dataset"]][run.fields["stage"]].append(run)
    table = Table(
        "Base-to-new generalization (%)",
        ["Dataset", "Method", "Base", "New", "H", "Base (paper)", "New (paper)", "H (paper)"],
        notes=_notes(
            ci95,
            "H = 2*Base*New/(Base+New) from the mean base and mean new accuracy",
            "Average: mean over datasets of base and of new, H of those means (as CoCoOp/MaPLe/ProMetaR)",
            "base from test_base runs when present, else the test after train_base",
        ),
    )
    published = reference.base2new()
    per_label_base, per_label_new = defaultdict(dict), defaultdict(dict)
    datasets = sorted({d for per in stages.values() for d in per}, key=names.order_key)
    for dataset in datasets:
        for label in sorted(stages):
            runs_of = stages[label].get(dataset)
            if not runs_of:
                continue
            base_runs = runs_of.get("test_base") or runs_of.get("train_base") or []
            new_runs = runs_of.get("test_new") or []
            base = summarize((r.accuracy for r in base_runs), ci95) if base_runs else None
            new = summarize((r.accuracy for r in new_runs), ci95) if new_runs else None
            if base:
                per_label_base[label][dataset] = _by_seed(base_runs)
            if new:
                per_label_new[label][dataset] = _by_seed(new_runs)
            paper = published.get((_trainer_of(label), names.display_name(dataset)), {})
            table.rows.append(
                [names.display_name(dataset), label, base, new,
                 harmonic_mean(base.mean, new.mean) if base and new else None,
                 paper.get("base"), paper.get("new"), paper.get("hm")]
            )
    for label in sorted(stages):
        complete = sorted(set(per_label_base[label]) & set(per_label_new[label]), key=names.order_key)
        if not complete:
            continue
        base = _average({d: per_label_base[label][d] for d in complete}, ci95)
        new = _average({d: per_label_new[label][d] for d in complete}, ci95)
        comparable = _covers(complete, names.BASE2NEW_DATASETS)
        paper = published.get((_trainer_of(label), "Average"), {}) if comparable else {}
        table.rows.append(
            [_average_label(len(complete), len(datasets_expected)), label, base, new,
             harmonic_mean(base.mean, new.mean), paper.get("base"), paper.get("new"), paper.get("hm")]
        )
    return table


def _transfer_table(runs, trainers, ci95, title, source, targets, target_kind, published, note,
                    paper_targets=()) -> Table:
    """Rows of methods: source accuracy, each target, average over targets; then the paper's rows.

    The source column is the few-shot run on ``source`` at the shots its evaluations used (or the
    ``target_kind`` run on it, for test-time tuning); zero-shot runs fill every column.
    """
    universe = {names.display_name(d) for d in (source,) + tuple(targets)}
    selected = [r for r in _filter(runs, ("fewshot", "zeroshot", target_kind), trainers)
                if names.display_name(r.fields["dataset"]) in universe]
    evaluated = {(r.method_key, r.get("shots")) for r in selected if r.kind == target_kind}
    selected = [r for r in selected if r.kind != "fewshot" or (r.method_key, r.get("shots")) in evaluated
                and names.display_name(r.fields["dataset"]) == names.display_name(source)]
    labels = method_labels(selected, ("dataset", "shots", "kind"))
    cells = defaultdict(lambda: defaultdict(list))
    for run in selected:
        cells[labels[run.method_key]][names.display_name(run.fields["dataset"])].append(run)
    columns = sorted({d for per in cells.values() for d in per}, key=names.order_key)
    target_columns = [d for d in columns if d != names.display_name(source)]
    table = Table(title, ["Method"] + columns + ["Target avg"], notes=_notes(ci95, note))
    for label in sorted(cells):
        row = [label] + [summarize((r.accuracy for r in cells[label][d]), ci95) if cells[label][d] else None
                         for d in columns]
        measured = {d: _by_seed(cells[label][d]) for d in target_columns if cells[label][d]}
        average = _average(measured, ci95) if measured else None
        if average is not None and len(measured) < len(targets):
            average = f"{average} ({len(measured)}/{len(targets)} targets)"
        table.rows.append(row + [average])
        paper = published.get(_trainer_of(label)) or {}
        cells_of_paper = [paper.get(d) for d in columns]
        paper_average = paper.get("target_avg") if _covers(target_columns, paper_targets) else None
        if any(v is not None for v in cells_of_paper) or paper_average is not None:
            table.rows.append([f"{_trainer_of(label)} (paper)"] + cells_of_paper + [paper_average])
    return table


def _test_time_reference() -> dict:
    """Published per-dataset numbers of every method in the cross-dataset and DG tables (TPT among them)."""
    published = defaultdict(dict)
    for table in (reference.cross_dataset(), reference.domain_generalization()):
        for method, values in table.items():
            published[method].update({k: v for k, v in values.items() if k != "target_avg"})
    return published


# protocol: (title, default targets, kind of the target runs, published numbers, note)
TRANSFER_PROTOCOLS = {
    "cross_dataset": (
        "Cross-dataset transfer (%)", names.CROSS_DATASET_TARGETS, "evaluation", reference.cross_dataset,
        "Target avg: mean over the target datasets (source excluded); paper: tools/reference/cross_dataset.csv",
    ),
    "dg": (
        "Domain generalization (%)", names.DG_TARGETS, "evaluation", reference.domain_generalization,
        "Target avg: mean over the target domains; paper: tools/reference/domain_generalization.csv",
    ),
    "tta": (
        "Test-time prompt tuning (%)", names.DG_TARGETS, "tta", _test_time_reference,
        "Target avg: mean over the datasets other than the source; paper: tools/reference/*.csv",
    ),
}


def transfer_table(protocol: str, runs: list[Run], trainers=None, ci95: bool = False, datasets=None,
                   source: str = names.SOURCE_DATASET) -> Table:
    """Cross-dataset (ImageNet -> 10 datasets), DG (ImageNet -> V2 / Sketch / A / R) or test-time tuning
    (one test image at a time) table; ``datasets`` are the targets (default: the protocol's)."""
    title, default_targets, target_kind, published, note = TRANSFER_PROTOCOLS[protocol]
    targets = tuple(datasets or default_targets)
    return _transfer_table(runs, trainers, ci95, title, source, targets, target_kind, published(), note,
                           paper_targets=default_targets)


def cross_dataset_table(runs: list[Run], **options) -> Table:
    """Prompts trained on ImageNet tested on other datasets (CoCoOp's cross-dataset protocol)."""
    return transfer_table("cross_dataset", runs, **options)


def dg_table(runs: list[Run], **options) -> Table:
    """Prompts trained on ImageNet tested on ImageNet-V2 / Sketch / A / R (domain generalization)."""
    return transfer_table("dg", runs, **options)


def tta_table(runs: list[Run], **options) -> Table:
    """Test-time tuning beside zero-shot CLIP and the published TPT numbers."""
    return transfer_table("tta", runs, **options)


TABLE_BUILDERS = {
    "fewshot": fewshot_table,
    "base2new": base2new_table,
    "cross_dataset": cross_dataset_table,
    "dg": dg_table,
    "tta": tta_table,
}


def build_table(protocol: str, runs: list[Run], trainers=None, ci95: bool = False, datasets=None,
                source: str = names.SOURCE_DATASET) -> Table:
    """The table of ``protocol`` over ``runs`` (from ``scan``); ``datasets`` restricts the datasets (targets)."""
    if protocol not in TABLE_BUILDERS:
        raise ValueError(f"unknown protocol {protocol!r}: expected one of {', '.join(TABLE_BUILDERS)}")
    if protocol in ("fewshot", "base2new"):
        return TABLE_BUILDERS[protocol](runs, trainers, ci95, datasets)
    return transfer_table(protocol, runs, trainers, ci95, datasets, source)


def write_table(table: Table, path_stem: str) -> list[str]:
    """Write ``<stem>.md`` and ``<stem>.csv`` (atomically); returns the two paths."""
    paths = []
    for fmt in ("md", "csv"):
        paths.append(write_text_atomically(f"{path_stem}.{fmt}", table.render(fmt)))
    return paths
