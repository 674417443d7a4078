"""Read test results from run folders and report mean +- std over seeds (CoOp's parse_test_res.py, extended).

CoOp's invocation works unchanged:

    python parse_test_res.py output/oxford_pets/CoOp/vit_b16_ep50_16shots/nctx16_cscFalse_ctpend
    python parse_test_res.py output/base2new/test_new/dtd/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1 --test-log
    python parse_test_res.py output/evaluation/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1_16shots --multi-exp

The first averages over the run folders (seed1, seed2, ...) inside the directory; ``--multi-exp`` does so for
every experiment folder below it (each folder holding run folders) and averages the experiments; ``--ci95``
reports the 95% confidence interval instead of the std (population std, np.std, as CoOp). A run's result is
its ``results.json``, else the final result block of its log (see tools/results.py); ``--test-log`` takes the
log's last block whatever precedes it. ``--format md|csv`` prints the summary as a table, ``--out FILE``
writes it.

Paper tables over a whole output folder:

    python parse_test_res.py output --protocol base2new [--trainer CoOp CoOp_GRAM] [--plot b2n.png]

(protocols: fewshot, base2new, cross_dataset, dg, tta; Markdown and CSV, with the published numbers.)
"""
import argparse
import os
import sys
from collections import defaultdict

import numpy as np

from tools import plots, tables
from fileio.atomic import write_text_atomically
from tools.results import find_run_dirs, read_run
from tools.tables import Table, summarize

METRICS = ("accuracy", "error", "macro_f1")


def experiment_runs(directory: str, test_log: bool) -> list:
    """Results of the run folders directly inside ``directory`` (CoOp: one per seed)."""
    runs = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not name.startswith("."):
            result = read_run(path, test_log)
            if result is None:
                print(f"No result yet in {path}")
            else:
                runs.append(result)
    return runs


def summarize_experiment(directory: str, args) -> dict:
    """Print each run's metrics and their summary, CoOp-style; returns {metric: Stat}."""
    print(f"Parsing files in {directory}")
    runs = experiment_runs(directory, args.test_log)
    if not runs:
        raise SystemExit(f"Nothing found in {directory}: no run folder with results.json or a log result")
    for run in runs:
        values = ". ".join(f"{m}: {getattr(run, m):.2f}%" for m in METRICS if getattr(run, m) is not None)
        print(f"file: {run.source}. {values}. ")
    summary = {}
    print("===")
    print(f"Summary of directory: {directory}")
    for metric in METRICS:
        values = [getattr(run, metric) for run in runs if getattr(run, metric) is not None]
        if values:
            summary[metric] = summarize(values, args.ci95)
            print(f"* {metric}: {summary[metric].mean:.2f}% +- {summary[metric].spread:.2f}%")
    print("===")
    return summary


def experiment_dirs(root: str) -> list[str]:
    """Folders below ``root`` that directly hold run folders (``--multi-exp``)."""
    return sorted({os.path.dirname(run_dir) for run_dir in find_run_dirs(root) if run_dir != root})


def summary_table(summaries: dict, ci95: bool) -> Table:
    notes = [tables.CI_NOTE if ci95 else tables.STD_NOTE]
    table = Table("Results", ["Experiment", "Runs"] + list(METRICS), notes=notes)
    for name, summary in summaries.items():
        count = summary["accuracy"].n
        table.rows.append([name, count] + [summary.get(m) for m in METRICS])
    if len(summaries) > 1:
        means = [float(np.mean([s[m].mean for s in summaries.values() if m in s])) if any(
            m in s for s in summaries.values()) else None for m in METRICS]
        table.rows.append(["Average", None] + means)
    return table


def emit(table: Table, args) -> None:
    """Print the table (``--format``, Markdown by default) and write it to ``--out`` if given."""
    text = table.render(args.format or "md")
    if args.out:
        write_text_atomically(args.out, text)
        print(f"Wrote {args.out}")
    print(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", help="experiment folder (seed* inside), or the output root with --protocol")
    parser.add_argument("--ci95", action="store_true", help="95%% confidence interval instead of std")
    parser.add_argument("--test-log", action="store_true", help="take a log's last result block (test-only logs)")
    parser.add_argument("--multi-exp", action="store_true", help="every experiment folder below the directory")
    parser.add_argument("--format", choices=("md", "csv"), help="print the summary as a Markdown or CSV table")
    parser.add_argument("--out", help="write the table to this file (format from --format, else md)")
    parser.add_argument("--protocol", choices=sorted(tables.TABLE_BUILDERS), help="paper table over an output root")
    parser.add_argument("--trainer", nargs="+", help="with --protocol: only these trainers")
    parser.add_argument("--datasets", nargs="+", help="with --protocol: only these datasets (targets)")
    parser.add_argument("--source", default="imagenet", help="with --protocol: source dataset of transfer tables")
    parser.add_argument("--plot", help="with --protocol fewshot or base2new: write the figure to this PNG")
    args = parser.parse_args(argv)

    if not os.path.isdir(args.directory):
        parser.error(f"{args.directory}: not a directory")
    if args.protocol:
        runs = tables.scan(args.directory, args.test_log)
        table = tables.build_table(args.protocol, runs, args.trainer, args.ci95, args.datasets, args.source)
        if not table.rows:
            print(f"No {args.protocol} runs with results under {args.directory}", file=sys.stderr)
            return 1
        emit(table, args)
        if args.plot:
            figure = {"fewshot": plots.fewshot_curves, "base2new": plots.base2new_bars}.get(args.protocol)
            if figure is None:
                parser.error("--plot draws the fewshot and base2new protocols")
            print(f"Wrote {figure(table, args.plot)}")
        return 0

    directories = experiment_dirs(args.directory) if args.multi_exp else [args.directory]
    if not directories:
        print(f"Nothing found in {args.directory}", file=sys.stderr)
        return 1
    summaries = defaultdict(dict)
    for directory in directories:
        summaries[os.path.relpath(directory, args.directory)] = summarize_experiment(directory, args)
    if args.multi_exp:
        print("Average performance")
        for metric in METRICS:
            means = [s[metric].mean for s in summaries.values() if metric in s]
            if means:
                print(f"* {metric}: {np.mean(means):.2f}%")
    if args.format or args.out:
        emit(summary_table(summaries, args.ci95), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
