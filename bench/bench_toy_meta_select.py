"""Choose the toy world's meta-learning settings on held-out meta-tasks, never on a reported dataset.

    python bench/bench_toy_meta_select.py            # after `make demo` (its world, CLIP and clusters)
    python bench/bench_toy_meta_select.py --candidates "5 first-order steps of 0.2" "10 first-order steps of 0.2"
    python bench/bench_toy_meta_select.py --method VPT     # configs/gram/toy_vpt.yaml's choice (first-order grid)

The validation protocol (``trainers/gram/meta_trainer.py``):

* ``HOLDOUT`` clusters of the task level (the demo's 16 CMHC clusters) are drawn at random and kept out of
  meta-training; every candidate meta-trains on the other clusters (``configs/gram/toy_coop.yaml`` plus the
  candidate's options);
* ``VAL_TASKS`` fixed tasks take their support and query sets from the held-out clusters only;
* each candidate's learned init and regulator adapt to a task's support set with the same fixed adaptation,
  ``VAL_STEPS`` regulated steps of ``VAL_LR`` (by default the method's downstream SGD step at momentum 0.9,
  ``configs/trainers/<method>/toy_b2n.yaml``'s LR / (1 - 0.9): 0.2 for CoOp, 0.08 for CoCoOp, 0.5 for VPT
  and MaPLe), whatever the candidate's own inner loop, as downstream tuning follows its own recipe;
* the criterion is the adapted query loss on those tasks (lower is better; the query accuracy, image ->
  caption top-1 among the 16 query captions, is printed beside it). The reference row is the same
  adaptation from a random init with plain steps (CoOp's starting point), measured before meta-training.

No downstream dataset is read. The chosen setting is the candidate with the lowest criterion; the final
meta checkpoint (``make demo`` for CoOp, ``bench/bench_toy_protocols.py`` for the others) then meta-trains on
all clusters with it. ``--method`` picks the prompt method (``configs/gram/toy_<method>.yaml`` is the base;
VPT and MaPLe meta-train on the corpus pixels); methods other than CoOp search the first-order,
no-mixup candidates by default (CoOp's search found mixup harmful and second order no better).
"""
import contextlib
import io
import json
import os
import sys
import time
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "third_party")]

import torch  # noqa: E402
import yaml  # noqa: E402
from tabulate import tabulate  # noqa: E402
from toy_bench_args import toy_world_parser  # noqa: E402  (bench/ is the script's folder, first on sys.path)

import meta_train  # noqa: E402
from fileio.atomic import write_text_atomically  # noqa: E402

METHODS = ("CoOp", "CoCoOp", "VPT", "MaPLe")
PIXEL_METHODS = ("VPT", "MaPLe")  # meta-trained on the corpus pixels
FIRST_ORDER = ["TRAINER.GRAM.FIRST_ORDER", "True"]
SECOND_ORDER = ["TRAINER.GRAM.FIRST_ORDER", "False"]
NO_MIXUP = ["TRAINER.GRAM.MIXUP_ALPHA", "0.0"]


def steps(count: int, lr: float) -> List[str]:
    return ["TRAINER.GRAM.INNER_STEPS", str(count), "TRAINER.GRAM.INNER_LR", str(lr)]


# The search: inner-loop length, step size, order and query mixup.
CANDIDATES: Dict[str, List[str]] = {
    "1 second-order step of 0.02, mixup 0.5 (the ViT-B/16 config)": steps(1, 0.02) + SECOND_ORDER
    + ["TRAINER.GRAM.MIXUP_ALPHA", "0.5"],
    "3 second-order steps of 0.2": steps(3, 0.2) + SECOND_ORDER + NO_MIXUP,
    "5 first-order steps of 0.05": steps(5, 0.05) + FIRST_ORDER + NO_MIXUP,
    "5 first-order steps of 0.2": steps(5, 0.2) + FIRST_ORDER + NO_MIXUP,
    "5 first-order steps of 0.2, mixup 0.5": steps(5, 0.2) + FIRST_ORDER + ["TRAINER.GRAM.MIXUP_ALPHA", "0.5"],
    "10 first-order steps of 0.2": steps(10, 0.2) + FIRST_ORDER + NO_MIXUP,
}
FIRST_ORDER_GRID = ["5 first-order steps of 0.05", "5 first-order steps of 0.2", "10 first-order steps of 0.2"]


def base_config(method: str) -> str:
    return os.path.join(REPO, "configs", "gram", f"toy_{method.lower()}.yaml")


def downstream_step(method: str) -> float:
    """The method's downstream SGD step with momentum folded in: LR / (1 - MOMENTUM) of its toy recipe."""
    with open(os.path.join(REPO, "configs", "trainers", method, "toy_b2n.yaml")) as handle:
        optim = yaml.safe_load(handle)["OPTIM"]
    return round(float(optim["LR"]) / (1.0 - float(optim.get("MOMENTUM", 0.9))), 6)


def method_output(args) -> str:
    """Where a method's candidates and selection go: ``--output`` itself for CoOp, a subfolder for the others."""
    return args.output if args.method == "CoOp" else os.path.join(args.output, args.method)


def validation_opts(args) -> List[str]:
    return ["TRAINER.GRAM.HOLDOUT_CLUSTERS", str(args.holdout), "TRAINER.GRAM.VAL_TASKS", str(args.val_tasks),
            "TRAINER.GRAM.VAL_INNER_STEPS", str(args.val_steps), "TRAINER.GRAM.VAL_INNER_LR", str(args.val_lr)]


def meta_train_candidate(args, name: str, seed: int) -> dict:
    """Meta-train one candidate on the training clusters (cached) and return its validation record."""
    tag = name.split(" (")[0].replace(" ", "_").replace(",", "").replace(".", "p")
    out = os.path.join(method_output(args), tag, f"seed{seed}")
    record = os.path.join(out, "validation.json")
    if not os.path.isfile(record):
        argv = ["--config-file", base_config(args.method), "--split-file", args.split_file,
                "--output-dir", out, "--seed", str(seed), "MODEL.BACKBONE.NAME", args.clip]
        if args.method in PIXEL_METHODS:
            argv += ["TRAINER.GRAM.CORPUS", os.path.join(args.root, "toy_corpus", "captions.tsv")]
        argv += CANDIDATES[name] + validation_opts(args)
        started = time.time()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            meta_train.main(meta_train.build_parser().parse_args(argv))
        print(f"  {name}, seed {seed}: {time.time() - started:.0f} s", flush=True)
    with open(record) as handle:
        return json.load(handle)


def selection_table(records: Dict[str, List[dict]]) -> tuple:
    """Rows (candidate, loss, accuracy, loss vs reference) and the chosen candidate's name."""
    def mean(values):
        return sum(values) / len(values)

    reference = [r["history"][0] for runs in records.values() for r in runs]
    ref_loss = mean([h["query_loss_after_adaptation"] for h in reference])
    ref_acc = mean([h["query_accuracy_after_adaptation"] for h in reference])
    rows = [["random init, plain steps (reference)", f"{ref_loss:.4f}", f"{ref_acc:.1f}", ""]]
    scores = {}
    for name, runs in records.items():
        loss = mean([r["history"][-1]["query_loss_after_adaptation"] for r in runs])
        accuracy = mean([r["history"][-1]["query_accuracy_after_adaptation"] for r in runs])
        scores[name] = loss
        rows.append([name, f"{loss:.4f}", f"{accuracy:.1f}", f"{loss - ref_loss:+.4f}"])
    chosen = min(scores, key=scores.get)
    for row in rows:
        row.append("chosen" if row[0] == chosen else "")
    return rows, chosen


def main() -> None:
    parser = toy_world_parser(__doc__.splitlines()[0], split_file=True)
    parser.add_argument("--output", default=os.path.join(REPO, "output", "bench_toy_meta_select"))
    parser.add_argument("--method", default="CoOp", choices=METHODS, help="the prompt method whose settings to choose")
    parser.add_argument("--candidates", nargs="+", default=None, choices=list(CANDIDATES),
                        help="default: all for CoOp, the first-order no-mixup ones for the others")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1], help="meta-training seeds per candidate")
    parser.add_argument("--holdout", type=int, default=4, help="clusters held out of meta-training")
    parser.add_argument("--val-tasks", type=int, default=16)
    parser.add_argument("--val-steps", type=int, default=20, help="regulated steps of the fixed adaptation")
    parser.add_argument("--val-lr", type=float, default=None,
                        help="their step size (default: the method's downstream SGD step, LR / (1 - momentum))")
    args = parser.parse_args()
    args.candidates = args.candidates or (list(CANDIDATES) if args.method == "CoOp" else FIRST_ORDER_GRID)
    args.val_lr = args.val_lr if args.val_lr is not None else downstream_step(args.method)
    args.clip = args.clip or os.path.join(args.root, "toy_clip", "toy_vit.pt")
    for path, what in ((args.clip, "the toy CLIP"), (args.split_file, "the clustering split")):
        if not os.path.isfile(path):
            raise SystemExit(f"{path}: {what} is missing; run `make demo` first or pass --root/--clip/--split-file")
    torch.set_num_threads(1)
    started = time.time()
    records = {name: [meta_train_candidate(args, name, seed) for seed in args.seeds] for name in args.candidates}
    rows, chosen = selection_table(records)
    held_out = next(iter(records.values()))[0]["held_out_clusters"]
    title = (f"{args.method}: meta-learning settings on {args.val_tasks} tasks of the held-out clusters {held_out} "
             f"({args.val_steps} regulated steps of {args.val_lr}; meta-training seeds {args.seeds})")
    table = tabulate(rows, headers=["candidate", "adapted query loss", "query acc. (%)", "vs reference", ""],
                     tablefmt="github")
    print(f"\n{title}\n\n{table}\n\nchosen: {chosen}\n{time.time() - started:.0f} s; runs under {args.output}")
    write_text_atomically(os.path.join(method_output(args), "selection.md"), f"{title}\n\n{table}\n\nchosen: {chosen}\n")


if __name__ == "__main__":
    main()
