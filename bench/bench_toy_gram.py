"""Does GRAM win on the toy world? Base-to-new accuracy of CoOp, CoOp_GRAM and their ablations.

    python bench/bench_toy_gram.py                    # after `make demo` (reads its world and meta checkpoint)
    python bench/bench_toy_gram.py --shots 1 --seeds 1 2 3

For each number of shots, each dataset and each seed it trains on the base classes and tests on the
base and the new classes (CoCoOp's protocol, the demo's recipe ``configs/trainers/CoOp/toy_b2n.yaml``):

* ZeroshotCLIP ("a photo of a {}."), CoOp from a random context and from "a photo of a",
* CoOp_GRAM with the meta-learned prompt initialization only, with the regulator only, and both
  (the method).

Runs go through ``train.main`` in this process (the same code as ``train.py``, without paying the
interpreter start-up per run) and are kept under ``--output``: a second call re-reads them. The first
table averages ``--test-datasets`` (the demo's two), the second all ``--datasets``.
"""
import argparse
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

import train  # noqa: E402
from tools.tables import harmonic_mean  # noqa: E402

CONFIG = "configs/trainers/CoOp/toy_b2n.yaml"
# name -> (trainer, extra options); "{meta}" is replaced by the meta checkpoint
VARIANTS: Dict[str, Tuple[str, List[str]]] = {
    "ZeroshotCLIP": ("ZeroshotCLIP", []),
    "CoOp (random init)": ("CoOp", []),
    "CoOp (\"a photo of a\" init)": ("CoOp", ["TRAINER.COOP.CTX_INIT", "a photo of a"]),
    "CoOp_GRAM init only": ("CoOp_GRAM", ["TRAINER.GRAM.META_CKPT", "{meta}", "TRAINER.GRAM.REGULATE", "False"]),
    "CoOp_GRAM regulator only": ("CoOp_GRAM", ["TRAINER.GRAM.META_CKPT", "{meta}", "TRAINER.GRAM.LOAD_INIT", "False"]),
    "CoOp_GRAM": ("CoOp_GRAM", ["TRAINER.GRAM.META_CKPT", "{meta}"]),
}
REFERENCE = "CoOp (random init)"


def run_one(args, variant: str, dataset: str, shots: int, seed: int) -> Dict[str, float]:
    """Train on base classes (unless zero-shot) and test on base and new; cached in results.json."""
    trainer, extra = VARIANTS[variant]
    extra = [args.meta if value == "{meta}" else value for value in extra]
    tag = variant.replace(" ", "_").replace('"', "").replace("(", "").replace(")", "")
    run_dir = os.path.join(args.output, f"shots_{shots}", dataset, tag, f"seed{seed}")
    common = ["--root", args.root, "--seed", str(seed), "--trainer", trainer, "--config-file", CONFIG,
              "--dataset-config-file", os.path.join(REPO, "configs", "datasets", f"{dataset}.yaml"),
              "MODEL.BACKBONE.NAME", args.clip, "DATASET.NUM_SHOTS", str(shots), "TRAINER.COOP.N_CTX", "4"] + extra
    accuracy = {}
    for subsample in ("base", "new"):
        out = os.path.join(run_dir, f"test_{subsample}")
        results = os.path.join(out, "results.json")
        if not os.path.isfile(results):
            argv = ["--output-dir", out]
            if trainer == "ZeroshotCLIP":
                argv += ["--eval-only"]
            elif subsample == "new":  # evaluate the base-trained prompts (train_base wrote test_base)
                max_epoch = train.setup_cfg(train.build_parser().parse_args(common)).OPTIM.MAX_EPOCH
                argv += ["--eval-only", "--model-dir", os.path.join(run_dir, "test_base"),
                         "--load-epoch", str(max_epoch)]
            parsed = train.build_parser().parse_args(argv + common + ["DATASET.SUBSAMPLE_CLASSES", subsample])
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                train.main(parsed, env_info=False)
        with open(results) as handle:
            accuracy[subsample] = float(json.load(handle)["accuracy"])
    return accuracy


def summarize(cells: Dict[Tuple[str, str], List[Dict[str, float]]], datasets: Sequence[str]) -> List[list]:
    rows = []
    reference_h = None
    for variant in VARIANTS:
        row = [variant]
        bases, news = [], []
        for dataset in datasets:
            runs = cells[(variant, dataset)]
            base, new = np.mean([r["base"] for r in runs]), np.mean([r["new"] for r in runs])
            bases.append(base)
            news.append(new)
            row.append(f"{base:.1f} / {new:.1f} / {harmonic_mean(base, new):.2f}")
        base, new = float(np.mean(bases)), float(np.mean(news))
        h = harmonic_mean(base, new)
        reference_h = h if variant == REFERENCE else reference_h
        row += [f"{base:.2f}", f"{new:.2f}", f"{h:.2f}"]
        rows.append(row)
    for row in rows:
        row.append(f"{float(row[-1]) - reference_h:+.2f}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.join(REPO, "data", "toy"), help="the toy world (make demo)")
    parser.add_argument("--clip", default=None, help="CLIP checkpoint (default ROOT/toy_clip/toy_vit.pt)")
    parser.add_argument("--meta", default=os.path.join(REPO, "output", "demo", "gram", "coop", "meta_checkpoint.pth"))
    parser.add_argument("--output", default=os.path.join(REPO, "output", "bench_toy_gram"))
    parser.add_argument("--datasets", nargs="+", default=["toy_shapes", "toy_color_shapes", "toy_textures"])
    parser.add_argument("--test-datasets", nargs="+", default=["toy_shapes", "toy_color_shapes"],
                        help="datasets averaged in the first table (the demo's)")
    parser.add_argument("--shots", nargs="+", type=int, default=[16, 1])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    args = parser.parse_args()
    args.clip = args.clip or os.path.join(args.root, "toy_clip", "toy_vit.pt")
    for path, what in ((args.clip, "the toy CLIP"), (args.meta, "the meta checkpoint")):
        if not os.path.isfile(path):
            raise SystemExit(f"{path}: {what} is missing; run `make demo` first or pass --root/--clip/--meta")
    torch.set_num_threads(1)

    started = time.time()
    for shots in args.shots:
        cells: Dict[Tuple[str, str], List[Dict[str, float]]] = {}
        for variant in VARIANTS:
            seeds = args.seeds[:1] if VARIANTS[variant][0] == "ZeroshotCLIP" else args.seeds
            for dataset in args.datasets:
                cells[(variant, dataset)] = [run_one(args, variant, dataset, shots, seed) for seed in seeds]
        for title, datasets in (("test datasets", args.test_datasets), ("all datasets", args.datasets)):
            headers = ["method"] + [f"{d} base / new / H" for d in datasets] + ["avg base", "avg new", "avg H",
                                                                               f"H vs {REFERENCE}"]
            print(f"\nToy world base-to-new, {shots} shot(s), mean of seeds {args.seeds}, {title}")
            print(tabulate(summarize(cells, datasets), headers=headers, tablefmt="github"))
    print(f"\n{time.time() - started:.0f} s; runs under {args.output}")


if __name__ == "__main__":
    main()
