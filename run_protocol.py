"""Run one evaluation protocol over trainers x datasets x seeds, then print and save its paper table.

    python run_protocol.py fewshot --trainer CoOp --trainer CoOp_GRAM --datasets oxford_pets dtd \\
        --shots 1 2 4 8 16 --seeds 1 2 3 --root $DATA --gpus 0,1,2
    python run_protocol.py base2new --trainer CoCoOp --root $DATA --gpus cpu --jobs 2
    python run_protocol.py cross_dataset --trainer MaPLe --root $DATA --gpus 0   # ImageNet -> 10 datasets
    python run_protocol.py dg --trainer CoOp --root $DATA --gpus 0,1             # ImageNet -> V2/Sketch/A/R
    python run_protocol.py tta --trainer TPT --trainer TPT_GRAM --root $DATA --gpus 0
    python run_protocol.py fewshot --trainer CoOp --root $DATA --launcher slurm --partition gpu --time 120 \
        --gpus-per-job 1 --array-parallelism 64                                 # one SLURM job per run

Runs use the output folders and train.py arguments of the bash scripts in scripts/ (tools/protocols.py), skip
finished runs, run again unfinished ones (train.py resumes from the last checkpoint), and run one job per GPU
(tools/runner.py), or with ``--launcher slurm`` one SLURM job per run through submitit, with the same
skipping and re-submission (tools/slurm_launcher.py). The table (Markdown + CSV, and a PNG for fewshot and base2new) is written to
``<output>/tables/``. The exit code is 1 when a run failed; their logs are listed.
"""
import argparse
import os
import shlex
import sys

from tools import plots, tables
from tools.protocols import (
    DEFAULT_DATASETS, PROTOCOLS, REPO_ROOT, RunSpec, Settings, build_runs, recipe_for,
)
from tools.runner import Job, parse_slots, run_jobs
from tools.slurm_launcher import LauncherError, SlurmSettings, run_jobs_submitit

FIGURES = {"fewshot": plots.fewshot_curves, "base2new": plots.base2new_bars}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("protocol", choices=PROTOCOLS)
    parser.add_argument("--trainer", action="extend", nargs="+", required=True, help="one or more trainers")
    parser.add_argument("--datasets", nargs="+", help="dataset config names (targets for cross_dataset/dg)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--shots", nargs="+", type=int, help="default: 1 2 4 8 16 for fewshot, else 16")
    parser.add_argument("--config", help="trainer config name (default: the trainer's config for the protocol)")
    parser.add_argument("--root", default=os.environ.get("DATA", ""), help="datasets root (default: $DATA)")
    parser.add_argument("--output", default="output", help="output root (relative to the repository root)")
    parser.add_argument("--gpus", default="cpu", help="GPU ids, e.g. 0,1,2 (one job per GPU), or cpu")
    parser.add_argument("--jobs", type=int, help="with --gpus cpu: jobs at once (default 1)")
    parser.add_argument("--source", default="imagenet", help="training dataset of cross_dataset / dg")
    parser.add_argument("--load-epoch", type=int, help="epoch test runs load (default: config OPTIM.MAX_EPOCH)")
    parser.add_argument("--n-ctx", type=int,
                        help="CoOp-style trainers: context tokens (default: the config's N_CTX, else 16)")
    parser.add_argument("--csc", choices=("False", "True"),
                        help="CoOp: class-specific context (default: the config's CSC, else False)")
    parser.add_argument("--ctp", help="CoOp: class token position, end / middle / front (default: the config's, else end)")
    parser.add_argument("--meta-ckpt", help="GRAM meta checkpoint (default output/gram/<cfg>/meta_checkpoint.pth)")
    parser.add_argument("--meta-config", help="GRAM: configs/gram/<name>.yaml to meta-train when the checkpoint is missing")
    parser.add_argument("--split-file", help="GRAM: clustering split file for that meta-training")
    parser.add_argument("--python", default=sys.executable, help="interpreter for train.py (options allowed)")
    parser.add_argument("--ci95", action="store_true", help="tables: 95%% confidence interval instead of std")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--persistent-workers", action="store_true",
                        help="run train.py jobs in one long-lived process per slot (torch's start-up paid once "
                             "per slot: much faster for small CPU runs)")
    cluster = parser.add_argument_group("cluster launcher (--launcher slurm, through submitit)")
    cluster.add_argument("--launcher", choices=("local", "slurm", "submitit-local"), default="local",
                         help="local: this machine's queue over --gpus; slurm: one SLURM job per run, in job arrays; "
                              "submitit-local: the slurm path with submitit's local executor (to try a sweep)")
    cluster.add_argument("--partition", help="SLURM partition")
    cluster.add_argument("--time", type=int, default=240, help="SLURM time limit per run, minutes")
    cluster.add_argument("--gpus-per-job", type=int, default=1, help="GPUs per run")
    cluster.add_argument("--cpus-per-job", type=int, help="CPU cores per run")
    cluster.add_argument("--array-parallelism", type=int, default=32, help="runs of one job array at once")
    cluster.add_argument("--slurm-folder", default="output/slurm",
                         help="submitit's logs (relative to the repository root)")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE pairs for every run")
    args = parser.parse_args(argv)
    if not args.root:
        parser.error("--root (or $DATA) is required: the datasets root")
    if len(args.opts) % 2:
        parser.error("--opts takes KEY VALUE pairs")
    return args


def _meta_train_job(args, trainer: str, meta_ckpt: str, gram_cfg: str = "") -> Job:
    """The job that writes a missing GRAM meta checkpoint with the meta config made for the protocol's recipe
    (scripts/gram/meta_train.sh's command, ``--opts`` at the end as that script passes OPTS: a tiny CLIP's
    MODEL.BACKBONE.NAME must reach meta-training too)."""
    if not args.split_file:
        raise SystemExit(
            f"{trainer}: meta checkpoint {meta_ckpt} not found; run scripts/gram/meta_train.sh first, "
            "pass --meta-ckpt, or pass --split-file (and --meta-config) to meta-train here"
        )
    config = args.meta_config or gram_cfg or recipe_for(trainer).gram_cfg
    command = shlex.split(args.python) + [
        "meta_train.py", "--root", args.root, "--config-file", f"configs/gram/{config}.yaml",
        "--split-file", args.split_file, "--output-dir", os.path.dirname(meta_ckpt),
    ] + list(args.opts)
    return Job(f"meta_train:{meta_ckpt}", command, os.path.dirname(meta_ckpt), done_check=lambda _: os.path.isfile(
        os.path.join(REPO_ROOT, meta_ckpt)))


def build_jobs(args) -> list[Job]:
    """Jobs of every trainer, deduplicated, prerequisites first."""
    shots = args.shots or ([1, 2, 4, 8, 16] if args.protocol == "fewshot" else [16])
    datasets = args.datasets or DEFAULT_DATASETS[args.protocol]
    jobs = {}
    for trainer in args.trainer:
        settings = Settings(
            data_root=args.root, output_root=args.output, python=args.python, config=args.config,
            load_epoch=args.load_epoch, n_ctx=args.n_ctx, csc=None if args.csc is None else args.csc == "True",
            class_token_position=args.ctp,
            meta_ckpt=args.meta_ckpt, source=args.source, extra_opts=list(args.opts),
        )
        runs: list[RunSpec] = build_runs(args.protocol, trainer, settings, datasets, args.seeds, shots)
        meta_job = None
        if runs and runs[0].meta_ckpt and not os.path.isfile(os.path.join(REPO_ROOT, runs[0].meta_ckpt)):
            gram_cfg = recipe_for(trainer).gram_config(args.protocol)
            meta_job = _meta_train_job(args, trainer, runs[0].meta_ckpt, gram_cfg)
            jobs.setdefault(meta_job.name, meta_job)
        for run in runs:
            after = run.after + ([meta_job.name] if meta_job else [])
            jobs.setdefault(run.name, Job(run.name, run.argv, os.path.join(REPO_ROOT, run.output_dir), after))
    return list(jobs.values())


CONFIG_FLAGS = ("--config-file", "--dataset-config-file")


def check_inputs(args, jobs: list[Job]) -> None:
    """Refuse, before any job starts, a datasets root that is not a folder and a config file (dataset, trainer or
    GRAM, from --datasets / --config / --meta-config) that does not exist, naming the ones there are."""
    if not os.path.isdir(args.root):
        raise ValueError(f"--root {args.root} is not a directory (expected the datasets root)")
    for job in jobs:
        for flag in CONFIG_FLAGS:
            if flag not in job.command:
                continue
            path = job.command[job.command.index(flag) + 1]
            if not os.path.isfile(os.path.join(REPO_ROOT, path)):
                folder = os.path.join(REPO_ROOT, os.path.dirname(path))
                names = sorted(os.path.splitext(name)[0] for name in os.listdir(folder)
                               if name.endswith(".yaml")) if os.path.isdir(folder) else []
                raise ValueError(f"{path} not found (for {job.name}); {os.path.dirname(path)} has: "
                                 f"{', '.join(names) or 'nothing'}")


def write_results(args) -> int:
    """Print the protocol's table and write it (and its figure) under ``<output>/tables/``."""
    output_root = os.path.join(REPO_ROOT, args.output)
    if not os.path.isdir(output_root):
        print(f"No results under {output_root} yet")
        return 1
    runs = tables.scan(output_root)
    datasets = args.datasets or DEFAULT_DATASETS[args.protocol]
    table = tables.build_table(args.protocol, runs, args.trainer, args.ci95, datasets, args.source)
    print(table.to_markdown())
    stem = os.path.join(output_root, "tables", args.protocol)
    written = tables.write_table(table, stem)
    if args.protocol in FIGURES and table.rows:
        written.append(FIGURES[args.protocol](table, stem + ".png"))
    print("Wrote " + ", ".join(written))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        slots = parse_slots(args.gpus, args.jobs)
        jobs = build_jobs(args)
        check_inputs(args, jobs)
    except (ValueError, FileNotFoundError) as error:
        print(f"run_protocol.py: error: {error}", file=sys.stderr)
        return 2
    if args.dry_run:
        for job in jobs:
            state = "done" if job.is_done() else "to run"
            print(f"[{state}] {' '.join(job.command)}")
        return 0
    if args.launcher == "local":
        summary = run_jobs(jobs, slots, cwd=REPO_ROOT, progress=not args.no_progress,
                           persistent_workers=args.persistent_workers)
    else:
        settings = SlurmSettings(
            folder=os.path.join(REPO_ROOT, args.slurm_folder), partition=args.partition, time_minutes=args.time,
            gpus_per_job=args.gpus_per_job, cpus_per_job=args.cpus_per_job,
            array_parallelism=args.array_parallelism, cluster="local" if args.launcher == "submitit-local" else "slurm")
        try:
            summary = run_jobs_submitit(jobs, settings, cwd=REPO_ROOT)
        except LauncherError as error:
            print(f"run_protocol.py: error: {error}", file=sys.stderr)
            return 2
    print(summary.report())
    write_results(args)
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
