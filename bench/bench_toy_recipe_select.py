"""Choose each prompt method's toy learning rate on validation images, never on a reported test split.

    python bench/bench_toy_recipe_select.py                          # after `make demo`; all four methods
    python bench/bench_toy_recipe_select.py --methods VPT --lrs 0.05 0.01

For every candidate ``OPTIM.LR`` the method trains with its toy recipe (``configs/trainers/<method>/toy_b2n.yaml``,
4 context tokens, 16 shots of all classes) on each ``--datasets`` training split, seeds 1-3, and is scored on
that dataset's validation split (``TEST.SPLIT val``: CoOp's few-shot validation set, min(shots, 4) images
per class, disjoint from the test split). The criterion is the mean validation accuracy over datasets and
seeds. The best candidate replaces the recipe's value only when its advantage, paired by (dataset, seed), has
a 95% t interval that excludes 0 (``tools/paired.py``); a validation set of a few images per class moves by
a point or two between learning rates by chance, and a recipe is not changed on noise. Only the baseline method is tuned; its GRAM
variant uses the same recipe, so the choice cannot favour GRAM. Runs go through ``train.main`` in this
process and are kept under ``--output``.
"""
import contextlib
import io
import os
import statistics
import sys
import time
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "third_party")]

import torch  # noqa: E402
import yaml  # noqa: E402
from tabulate import tabulate  # noqa: E402
from toy_bench_args import toy_world_parser  # noqa: E402  (bench/ is the script's folder, first on sys.path)

import train  # noqa: E402
from fileio.atomic import write_text_atomically  # noqa: E402
from tools import tables  # noqa: E402
from tools.paired import keep_unless_beaten, paired_difference  # noqa: E402
from tools.protocols import Settings, build_runs  # noqa: E402

METHODS = ("CoOp", "CoCoOp", "VPT", "MaPLe")
CONFIG = "toy_b2n"
N_CTX = 4
LRS = (0.05, 0.02, 0.01, 0.005, 0.002)


def recipe_lr(method: str) -> float:
    with open(os.path.join(REPO, "configs", "trainers", method, f"{CONFIG}.yaml")) as handle:
        return float(yaml.safe_load(handle)["OPTIM"]["LR"])


def validation_accuracies(args, method: str, lr: float) -> Dict[tuple, float]:
    """Validation accuracy of every (dataset, seed) run of ``method`` at ``lr`` (runs kept and reused)."""
    output = os.path.join(args.output, method, f"lr{lr:g}")
    settings = Settings(data_root=args.root, output_root=output, python=sys.executable, config=CONFIG, n_ctx=N_CTX,
                        extra_opts=["MODEL.BACKBONE.NAME", args.clip, "OPTIM.LR", str(lr), "TEST.SPLIT", "val"])
    for spec in build_runs("fewshot", method, settings, args.datasets, args.seeds, [args.shots]):
        if not os.path.isfile(os.path.join(spec.output_dir, "results.json")):
            argv = spec.argv[spec.argv.index("train.py") + 1:]
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                train.main(train.build_parser().parse_args(argv), env_info=False)
    return {(run.fields["dataset"], run.get("seed")): run.accuracy for run in tables.scan(output)
            if run.fields.get("trainer") == method and run.fields.get("dataset") in args.datasets
            and run.get("seed") in args.seeds}


def main() -> None:
    parser = toy_world_parser(__doc__.splitlines()[0])
    parser.add_argument("--output", default=os.path.join(REPO, "output", "bench_toy_recipe_select"))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--lrs", nargs="+", type=float, default=list(LRS), help="candidate learning rates")
    parser.add_argument("--datasets", nargs="+", default=["toy_shapes", "toy_color_shapes"],
                        help="whose validation splits choose")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    args = parser.parse_args()
    args.clip = args.clip or os.path.join(args.root, "toy_clip", "toy_vit.pt")
    if not os.path.isfile(args.clip):
        raise SystemExit(f"{args.clip}: the toy CLIP is missing; run `make demo` first or pass --root/--clip")
    torch.set_num_threads(1)
    os.chdir(REPO)  # run specs name configs relative to the repository
    started = time.time()
    rows, report = [], []
    for method in args.methods:
        current = recipe_lr(method)
        accuracies: Dict[float, Dict[tuple, float]] = {}
        for lr in sorted(set(args.lrs) | {current}, reverse=True):
            accuracies[lr] = validation_accuracies(args, method, lr)
            print(f"  {method} lr {lr:g}: {statistics.mean(accuracies[lr].values()):.2f} "
                  f"({time.time() - started:.0f} s)", flush=True)
        scores = {lr: statistics.mean(values.values()) for lr, values in accuracies.items()}
        chosen, best, advantage = keep_unless_beaten(accuracies, current)
        for lr in accuracies:
            note = ", ".join(word for word, flag in (("recipe", lr == current), ("chosen", lr == chosen)) if flag)
            versus = "" if lr == current else str(paired_difference(accuracies[lr], accuracies[current]))
            rows.append([method, f"{lr:g}", f"{scores[lr]:.2f}", versus, len(accuracies[lr]), note])
        report.append(f"{method}: LR {chosen:g} (recipe {current:g}; best on validation {best:g}, "
                      f"{advantage} over the recipe)")
    table = tabulate(rows, headers=["method", "LR", "mean val. acc.", "vs recipe, paired [95%]", "runs", ""], tablefmt="github")
    title = (f"Toy learning rates chosen on the validation splits of {', '.join(args.datasets)} "
             f"({args.shots} shots, seeds {args.seeds})")
    text = f"{title}\n\n{table}\n\n" + "\n".join(report) + "\n"
    print(f"\n{text}{time.time() - started:.0f} s; runs under {args.output}")
    write_text_atomically(os.path.join(args.output, "selection.md"), text)


if __name__ == "__main__":
    main()
