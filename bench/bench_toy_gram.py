"""Does GRAM win on the toy world? Base-to-new accuracy of a prompt method, its GRAM variant and ablations.

    python bench/bench_toy_gram.py                    # CoOp, after `make demo` (reads its world and meta checkpoint)
    python bench/bench_toy_gram.py --shots 1 --seeds 1 2 3
    python bench/bench_toy_gram.py --method VPT --meta output/gram/toy_vpt/meta_checkpoint.pth --shots 16

For each number of shots, each dataset and each seed it trains on the base classes and tests on the
base and the new classes (CoCoOp's protocol, the method's recipe ``configs/trainers/<method>/toy_b2n.yaml``):

* ZeroshotCLIP ("a photo of a {}."), the method from its config's initialization (CoOp: a random context,
  and also "a photo of a"),
* <method>_GRAM with the meta-learned prompt initialization only, with the regulator only, and both
  (the method). Meta-train other methods first with ``configs/gram/toy_<method>.yaml`` (README).

``--train-classes all`` trains on every class instead (the few-shot protocol's training set) and tests
the same prompts on all classes at once and on the base and the new half apart: with the base-to-new runs
it separates what the training set does to GRAM's gain from what the evaluation's number of classes does.

Runs go through ``train.main`` in this process (the same code as ``train.py``, without paying the
interpreter start-up per run) and are kept under ``--output``: a second call re-reads them. The first
table averages ``--test-datasets`` (the demo's two), the second all ``--datasets``.
"""
import contextlib
import io
import json
import os
import sys
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "third_party")]

import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402
from toy_bench_args import toy_world_parser  # noqa: E402  (bench/ is the script's folder, first on sys.path)

import train  # noqa: E402
from fileio.stage_files import META_CHECKPOINT_NAME  # noqa: E402
from tools.tables import harmonic_mean  # noqa: E402

METHODS = ("CoOp", "CoCoOp", "VPT", "MaPLe")
ZEROSHOT_CONFIG = "configs/trainers/CoOp/toy_b2n.yaml"


def variants(method: str) -> Dict[str, Tuple[str, List[str]]]:
    """Row name -> (trainer, extra options); "{meta}" stands for the meta checkpoint."""
    gram = f"{method}_GRAM"
    rows: Dict[str, Tuple[str, List[str]]] = {"ZeroshotCLIP": ("ZeroshotCLIP", [])}
    if method == "CoOp":
        rows[reference_row(method)] = ("CoOp", [])
        rows["CoOp (\"a photo of a\" init)"] = ("CoOp", ["TRAINER.COOP.CTX_INIT", "a photo of a"])
    else:
        rows[method] = (method, [])
    rows[f"{gram} init only"] = (gram, ["TRAINER.GRAM.META_CKPT", "{meta}", "TRAINER.GRAM.REGULATE", "False"])
    rows[f"{gram} regulator only"] = (gram, ["TRAINER.GRAM.META_CKPT", "{meta}", "TRAINER.GRAM.LOAD_INIT", "False"])
    rows[gram] = (gram, ["TRAINER.GRAM.META_CKPT", "{meta}"])
    return rows


def reference_row(method: str) -> str:
    """The row every H is compared with: the method without GRAM."""
    return "CoOp (random init)" if method == "CoOp" else method


def run_one(args, variant: str, dataset: str, shots: int, seed: int) -> Dict[str, float]:
    """Train on ``args.train_classes`` (unless zero-shot), test on those and on each half; cached in
    results.json. Returns the accuracy per tested class subset ("base", "new", and "all" if trained on all)."""
    trainer, extra = variants(args.method)[variant]
    extra = [args.meta if value == "{meta}" else value for value in extra]
    config = ZEROSHOT_CONFIG if trainer == "ZeroshotCLIP" else f"configs/trainers/{args.method}/toy_b2n.yaml"
    tag = variant.replace(" ", "_").replace('"', "").replace("(", "").replace(")", "")
    shots_dir = f"shots_{shots}" if args.train_classes == "base" else f"shots_{shots}_all_classes"
    run_dir = os.path.join(args.output, args.method, shots_dir, dataset, tag, f"seed{seed}")
    common = ["--root", args.root, "--seed", str(seed), "--trainer", trainer, "--config-file", config,
              "--dataset-config-file", os.path.join(REPO, "configs", "datasets", f"{dataset}.yaml"),
              "MODEL.BACKBONE.NAME", args.clip, "DATASET.NUM_SHOTS", str(shots)] + extra
    accuracy = {}
    subsamples = ("base", "new") if args.train_classes == "base" else ("all", "base", "new")
    for subsample in subsamples:  # the trained subset first: the others evaluate its prompts
        out = os.path.join(run_dir, f"test_{subsample}")
        results = os.path.join(out, "results.json")
        if not os.path.isfile(results):
            argv = ["--output-dir", out]
            if trainer == "ZeroshotCLIP":
                argv += ["--eval-only"]
            elif subsample != args.train_classes:  # evaluate the prompts trained in test_<train_classes>
                max_epoch = train.setup_cfg(train.build_parser().parse_args(common)).OPTIM.MAX_EPOCH
                argv += ["--eval-only", "--model-dir", os.path.join(run_dir, f"test_{args.train_classes}"),
                         "--load-epoch", str(max_epoch)]
            parsed = train.build_parser().parse_args(argv + common + ["DATASET.SUBSAMPLE_CLASSES", subsample])
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                train.main(parsed, env_info=False)
        with open(results) as handle:
            accuracy[subsample] = float(json.load(handle)["accuracy"])
    return accuracy


def summarize(cells: Dict[Tuple[str, str], List[Dict[str, float]]], datasets: Sequence[str],
              method: str) -> List[list]:
    rows, hs = [], []
    for variant in variants(method):
        row = [variant]
        bases, news = [], []
        for dataset in datasets:
            runs = cells[(variant, dataset)]
            base, new = np.mean([r["base"] for r in runs]), np.mean([r["new"] for r in runs])
            bases.append(base)
            news.append(new)
            row.append(f"{base:.1f} / {new:.1f} / {harmonic_mean(base, new):.2f}")
        base, new = float(np.mean(bases)), float(np.mean(news))
        hs.append(round(harmonic_mean(base, new), 2))  # as printed: the last column subtracts printed figures
        row += [f"{base:.2f}", f"{new:.2f}", f"{hs[-1]:.2f}"]
        if "all" in cells[(variant, datasets[0])][0]:  # trained on all classes: the all-way accuracy too
            row.append(f"{np.mean([np.mean([r['all'] for r in cells[(variant, d)]]) for d in datasets]):.2f}")
        rows.append(row)
    reference_h = hs[list(variants(method)).index(reference_row(method))]
    for row, h in zip(rows, hs):
        row.append(f"{h - reference_h + 0.0:+.2f}")  # + 0.0: no "-0.00" for the reference row
    return rows


def main() -> None:
    parser = toy_world_parser(__doc__.splitlines()[0])
    parser.add_argument("--method", default="CoOp", choices=METHODS, help="the prompt method (default CoOp)")
    parser.add_argument("--meta", default=None,
                        help="its meta checkpoint (default for CoOp: the demo's, output/demo/gram/coop)")
    parser.add_argument("--output", default=os.path.join(REPO, "output", "bench_toy_gram"))
    parser.add_argument("--datasets", nargs="+", default=["toy_shapes", "toy_color_shapes", "toy_textures"])
    parser.add_argument("--test-datasets", nargs="+", default=["toy_shapes", "toy_color_shapes"],
                        help="datasets averaged in the first table (the demo's)")
    parser.add_argument("--shots", nargs="+", type=int, default=[16, 1])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--train-classes", choices=("base", "all"), default="base",
                        help="train on the base half (base-to-new) or on all classes (few-shot), then test each half")
    args = parser.parse_args()
    args.clip = args.clip or os.path.join(args.root, "toy_clip", "toy_vit.pt")
    if args.meta is None:
        if args.method != "CoOp":
            raise SystemExit(f"--method {args.method} needs --meta: meta-train it first with "
                             f"configs/gram/toy_{args.method.lower()}.yaml (README, toy-world results)")
        args.meta = os.path.join(REPO, "output", "demo", "gram", "coop", META_CHECKPOINT_NAME)
    for path, what in ((args.clip, "the toy CLIP"), (args.meta, "the meta checkpoint")):
        if not os.path.isfile(path):
            raise SystemExit(f"{path}: {what} is missing; run `make demo` first or pass --root/--clip/--meta")
    torch.set_num_threads(1)

    started = time.time()
    for shots in args.shots:
        cells: Dict[Tuple[str, str], List[Dict[str, float]]] = {}
        for variant, (trainer, _) in variants(args.method).items():
            seeds = args.seeds[:1] if trainer == "ZeroshotCLIP" else args.seeds
            for dataset in args.datasets:
                cells[(variant, dataset)] = [run_one(args, variant, dataset, shots, seed) for seed in seeds]
        for title, datasets in (("test datasets", args.test_datasets), ("all datasets", args.datasets)):
            all_way = ["avg all classes at once"] if args.train_classes == "all" else []
            headers = (["method"] + [f"{d} base / new / H" for d in datasets] + ["avg base", "avg new", "avg H"]
                       + all_way + [f"H vs {reference_row(args.method)}"])
            print(f"\nToy world, {args.method} trained on {args.train_classes} classes, {shots} shot(s), "
                  f"mean of seeds {args.seeds}, {title}")
            print(tabulate(summarize(cells, datasets, args.method), headers=headers, tablefmt="github"))
    print(f"\n{time.time() - started:.0f} s; runs under {args.output}")


if __name__ == "__main__":
    main()
