"""The paper's four settings on the toy world, each prompt method with and without GRAM, seeds 1-3.

    python bench/bench_toy_protocols.py                       # CoOp, after `make demo`
    python bench/bench_toy_protocols.py --methods CoOp CoCoOp VPT MaPLe --protocols dg cross_dataset

Protocols (``tools/protocols.py`` builds every run exactly as ``run_protocol.py`` does, same folders, so
``run_protocol.py <protocol> ... --output output/bench_toy_protocols`` prints the same tables):

* ``fewshot``: 1/2/4/8/16 shots of all classes (table and accuracy-vs-shots plot);
* ``base2new``: train on the base half, test on the new half (16 shots);
* ``dg``: train on ToyShapes (16 shots, all classes), test on its Sketch / Noisy / Faded / Patterned styles;
* ``cross_dataset``: train on ToyColorShapes (16 shots), test on the other toy datasets' class names.

Every run uses the toy recipe ``configs/trainers/<method>/toy_b2n.yaml`` and 4 context tokens (the demo's);
<method>_GRAM reads its meta checkpoint (``--meta-dir``/toy_<method>/meta_checkpoint.pth, the demo's for
CoOp) and meta-trains a missing one with ``configs/gram/toy_<method>.yaml``. Runs go through ``train.main``
in this process and are kept: a second call only rebuilds the tables. Written under ``--output``/tables:
each protocol's mean +- std table (Markdown, CSV; PNG for fewshot and base2new), ``paired.md``, the
difference <method>_GRAM - <method> paired by seed with its 95% t interval (``tools/paired.py``), and
``summary.md``, those differences on each protocol's headline average, a row per method.
"""
import contextlib
import io
import os
import sys
import time
from collections import defaultdict
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "third_party")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402
from toy_bench_args import toy_world_parser  # noqa: E402  (bench/ is the script's folder, first on sys.path)

import meta_train  # noqa: E402
import train  # noqa: E402
from tools import plots, tables  # noqa: E402
from fileio.atomic import write_text_atomically  # noqa: E402
from tools.paired import paired_difference  # noqa: E402
from tools.protocols import RunSpec, Settings, build_runs  # noqa: E402

METHODS = ("CoOp", "CoCoOp", "VPT", "MaPLe")
PIXEL_METHODS = ("VPT", "MaPLe")  # meta-trained on the corpus pixels
PROTOCOLS = ("fewshot", "base2new", "dg", "cross_dataset")
CONFIG = "toy_b2n"
N_CTX = 4
HELDOUT = ["toy_size_shapes", "toy_positions", "toy_colors"]  # the held-out class sets (specs.HELDOUT_SPECS)
REPORTED = ["toy_shapes", "toy_color_shapes"] + HELDOUT
DG_SOURCE, DG_TARGETS = "toy_shapes", ["toy_shapes_sketch", "toy_shapes_noisy", "toy_shapes_faded",
                                       "toy_shapes_patterned"]
XD_SOURCE = "toy_color_shapes"
XD_TARGETS = ["toy_shapes", "toy_textures", "toy_counting", "toy_size_shapes", "toy_positions", "toy_colors"]


def protocol_plan(protocol: str) -> dict:
    """Datasets (targets), source and shots of one protocol."""
    return {
        "fewshot": {"datasets": REPORTED, "source": XD_SOURCE, "shots": [1, 2, 4, 8, 16]},
        "base2new": {"datasets": REPORTED, "source": XD_SOURCE, "shots": [16]},
        "dg": {"datasets": DG_TARGETS, "source": DG_SOURCE, "shots": [16]},
        "cross_dataset": {"datasets": XD_TARGETS, "source": XD_SOURCE, "shots": [16]},
    }[protocol]


def meta_checkpoint(args, method: str) -> str:
    """The method's toy meta checkpoint, meta-trained here (configs/gram/toy_<method>.yaml) when missing."""
    if method == "CoOp" and args.coop_meta:
        return args.coop_meta
    out = os.path.join(args.meta_dir, f"toy_{method.lower()}")
    path = os.path.join(out, "meta_checkpoint.pth")
    if not os.path.isfile(path):
        argv = ["--config-file", os.path.join(REPO, "configs", "gram", f"toy_{method.lower()}.yaml"),
                "--split-file", args.split_file, "--output-dir", out, "--seed", "1", "MODEL.BACKBONE.NAME", args.clip]
        if method in PIXEL_METHODS:
            argv += ["TRAINER.GRAM.CORPUS", os.path.join(args.root, "toy_corpus", "captions.tsv")]
        print(f"meta-training {method} into {out}", flush=True)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            meta_train.main(meta_train.build_parser().parse_args(argv))
    return path


def run_in_process(spec: RunSpec) -> None:
    """One train.py run (skipped when its results.json exists)."""
    if os.path.isfile(os.path.join(spec.output_dir, "results.json")):
        return
    argv = spec.argv[spec.argv.index("train.py") + 1:]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train.main(train.build_parser().parse_args(argv), env_info=False)


def run_protocol(args, protocol: str, trainers: List[str], metas: Dict[str, str], output: str,
                 plan: dict = None) -> None:
    """Every run of ``protocol`` (``plan``: its datasets, source and shots) for ``trainers`` under ``output``."""
    plan = plan or protocol_plan(protocol)
    for trainer in trainers:
        settings = Settings(data_root=args.root, output_root=output, python=sys.executable, config=CONFIG,
                            n_ctx=N_CTX, meta_ckpt=metas.get(trainer), source=plan["source"],
                            extra_opts=["MODEL.BACKBONE.NAME", args.clip])
        runs = build_runs(protocol, trainer, settings, plan["datasets"], args.seeds, plan["shots"])
        started = time.time()
        for spec in runs:
            run_in_process(spec)
        print(f"  {protocol} {trainer}: {len(runs)} runs, {time.time() - started:.0f} s", flush=True)


TARGET_KIND = {"fewshot": "fewshot", "dg": "evaluation", "cross_dataset": "evaluation"}


def per_seed(runs: List[tables.Run], protocol: str, trainer: str, dataset: str, shots: int) -> Dict[str, dict]:
    """{measure: {seed: accuracy}} of one table cell: ``acc``, or ``base`` / ``new`` / ``H`` for base2new."""
    values: Dict[str, dict] = defaultdict(dict)
    for run in runs:
        fields = run.fields
        if fields["trainer"] != trainer or fields.get("dataset") != dataset or run.get("shots") != shots:
            continue
        if protocol == "base2new" and run.kind == "base2new" and fields["stage"] in ("train_base", "test_new"):
            values["base" if fields["stage"] == "train_base" else "new"][run.get("seed")] = run.accuracy
        elif protocol != "base2new" and run.kind == TARGET_KIND[protocol]:
            values["acc"][run.get("seed")] = run.accuracy
    if protocol == "base2new":
        seeds = set(values["base"]) & set(values["new"])
        values["H"] = {s: tables.harmonic_mean(values["base"][s], values["new"][s]) for s in seeds}
    return values


def average_per_seed(cells: List[Dict[str, dict]], measure: str) -> Dict[int, float]:
    """Per seed, the mean over datasets; for H, H of the mean base and mean new (the tables' convention)."""
    keys = ("base", "new") if measure == "H" else (measure,)
    seeds = set.intersection(*(set(cell[key]) for cell in cells for key in keys))
    means = {seed: [float(np.mean([cell[key][seed] for cell in cells])) for key in keys] for seed in seeds}
    return {seed: tables.harmonic_mean(*m) if measure == "H" else m[0] for seed, m in means.items()}


def paired_rows(runs: List[tables.Run], protocol: str, method: str, baseline_runs: List[tables.Run] = None,
                plan: dict = None) -> List[list]:
    """Rows (protocol, dataset or average label, shots, measure, PairedDifference): <method>_GRAM - <method>
    by seed (the baseline's runs from ``baseline_runs`` when given, e.g. another output root)."""
    plan = plan or protocol_plan(protocol)
    rows = []
    for shots in plan["shots"]:
        cells = {d: [per_seed(runs, protocol, f"{method}_GRAM", d, shots),
                     per_seed(baseline_runs or runs, protocol, method, d, shots)] for d in plan["datasets"]}
        for measure in (["base", "new", "H"] if protocol == "base2new" else ["acc"]):
            for dataset, (gram, base) in cells.items():
                if len(set(gram[measure]) & set(base[measure])) >= 2:
                    rows.append([protocol, dataset, shots, measure, paired_difference(gram[measure], base[measure])])
            for label, group in (("average", list(cells)), ("held-out sets average", [d for d in cells if d in HELDOUT])):
                if len(group) < 2:
                    continue
                gram, base = (average_per_seed([cells[d][side] for d in group], measure) for side in (0, 1))
                if len(set(gram) & set(base)) >= 2:
                    rows.append([protocol, label, shots, measure, paired_difference(gram, base)])
    return rows


AVERAGE_LABELS = ("average", "held-out sets average")


def paired_markdown(rows_by_method: Dict[str, List[list]]) -> str:
    """``paired.md``: every row of ``paired_rows``, the averages in bold (with "(excludes 0)" when so)."""
    rows = []
    for method, method_rows in rows_by_method.items():
        for protocol, label, shots, measure, difference in method_rows:
            if label in AVERAGE_LABELS:
                label, cell = f"**{label}**", f"**{difference}**" + (" (excludes 0)" if difference.excludes_zero else "")
            else:
                cell = str(difference)
            rows.append([f"{method}_GRAM - {method}", protocol, label, shots, measure, cell])
    return ("### Paired difference to the baseline (GRAM minus it, by seed), mean [95% t interval]\n\n"
            + tabulate(rows, headers=["methods", "protocol", "dataset", "shots", "measure", "difference"],
                       tablefmt="github", disable_numparse=True) + "\n")


# The summary's columns: (protocol, shots, measure, dataset label in paired_rows, column title).
SUMMARY_CELLS = [
    ("fewshot", 1, "acc", "average", "few-shot, 1 shot"),
    ("fewshot", 16, "acc", "average", "few-shot, 16 shots"),
    ("fewshot", 1, "acc", "held-out sets average", "held-out sets, 1 shot"),
    ("base2new", 16, "H", "average", "base-to-new H"),
    ("base2new", 16, "H", "held-out sets average", "held-out sets, H"),
    ("dg", 16, "acc", "average", "DG, target avg"),
    ("cross_dataset", 16, "acc", "average", "cross-dataset, target avg"),
]


def summary_markdown(rows_by_method: Dict[str, List[list]], protocols: List[str]) -> str:
    """One row per method: <method>_GRAM - <method> on each protocol's headline average (bold: the
    interval excludes 0)."""
    cells = [cell for cell in SUMMARY_CELLS if cell[0] in protocols]
    rows = []
    for method, method_rows in rows_by_method.items():
        found = {(protocol, shots, measure, label): f"**{difference}**" if difference.excludes_zero else str(difference)
                 for protocol, label, shots, measure, difference in method_rows}
        rows.append([f"{method}_GRAM - {method}"] + [found.get(cell[:4], "") for cell in cells])
    return ("### GRAM minus its baseline, paired by seed: mean [95% t interval] (bold: excludes 0)\n\n"
            + tabulate(rows, headers=["methods"] + [cell[4] for cell in cells], tablefmt="github",
                       disable_numparse=True) + "\n")


def write_tables(args, trainers: List[str], methods: List[str]) -> str:
    runs = tables.scan(args.output_root)
    out_dir = os.path.join(args.output_root, "tables")
    report = []
    for protocol in args.protocols:
        plan = protocol_plan(protocol)
        table = tables.build_table(protocol, runs, ["ZeroshotCLIP"] + trainers, datasets=plan["datasets"],
                                   source=plan["source"])
        stem = os.path.join(out_dir, protocol)
        tables.write_table(table, stem)
        if protocol == "fewshot" and table.rows:
            plots.fewshot_curves(table, stem + ".png")
        if protocol == "base2new" and table.rows:
            plots.base2new_bars(table, stem + ".png")
        report.append(table.to_markdown())
    rows_by_method = {method: [row for protocol in args.protocols for row in paired_rows(runs, protocol, method)]
                      for method in methods}
    paired = paired_markdown(rows_by_method)
    write_text_atomically(os.path.join(out_dir, "paired.md"), paired)
    report.append(paired)
    summary = summary_markdown(rows_by_method, args.protocols)
    write_text_atomically(os.path.join(out_dir, "summary.md"), summary)
    report.append(summary)
    return "\n".join(report)


def main() -> None:
    parser = toy_world_parser(__doc__.splitlines()[0], split_file=True)
    parser.add_argument("--coop-meta", default=os.path.join(REPO, "output", "demo", "gram", "coop", "meta_checkpoint.pth"),
                        help="CoOp's meta checkpoint (default: the demo's)")
    parser.add_argument("--meta-dir", default=os.path.join(REPO, "output", "gram"),
                        help="where the other methods' toy meta checkpoints are (or are meta-trained)")
    parser.add_argument("--output", default="output/bench_toy_protocols", help="output root (relative to the repo)")
    parser.add_argument("--methods", nargs="+", default=["CoOp"], choices=METHODS)
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    args = parser.parse_args()
    args.clip = args.clip or os.path.join(args.root, "toy_clip", "toy_vit.pt")
    args.output_root = os.path.join(REPO, args.output)
    for path, what in ((args.clip, "the toy CLIP"), (args.split_file, "the clustering split")):
        if not os.path.isfile(path):
            raise SystemExit(f"{path}: {what} is missing; run `make demo` first or pass --root/--clip/--split-file")
    from datasets.toy_world import build_heldout_datasets

    build_heldout_datasets(args.root, progress=False)
    torch.set_num_threads(1)
    os.chdir(REPO)  # run specs name configs relative to the repository
    started = time.time()
    metas = {f"{method}_GRAM": meta_checkpoint(args, method) for method in args.methods}
    trainers = [name for method in args.methods for name in (method, f"{method}_GRAM")]
    for protocol in args.protocols:
        run_protocol(args, protocol, ["ZeroshotCLIP"] + trainers, metas, args.output)
    print(write_tables(args, trainers, args.methods))
    print(f"{time.time() - started:.0f} s; runs and tables under {args.output_root}")


if __name__ == "__main__":
    main()
