"""What each journal piece adds over flat k-means: CMHC, complexity-informed tasks, complexity-informed prototypes.

    python bench/bench_toy_ablation.py        # after `make demo` and bench/bench_toy_protocols.py (CoOp's runs)

Four clusterings of the demo's corpus features (no re-encoding), each meta-trained once with
``configs/gram/toy_coop.yaml`` (seed 1), then CoOp_GRAM on the toy world with the protocol of
``bench_toy_protocols.py`` (base-to-new at 16 shots and the 1-shot few-shot setting, the reported datasets,
seeds 1-3), paired by seed with CoOp's runs of that script:

1. flat k-means, 16 clusters, tasks drawn uniformly (GRAM, ICCV);
2. CMHC, 64 k-means leaves merged into 4 and 16 clusters (tasks from the 16), tasks drawn uniformly;
3. CMHC with complexity-informed task construction (``ADAPTIVE_TASKS``): the demo's split and meta checkpoint,
   whose CoOp_GRAM runs are those of ``bench_toy_protocols.py``;
4. 3 with complexity-informed prototypes (``prototype_strength`` 1, ``clustering/prototypes.py``).

Each row's difference to CoOp and to the row above is paired by seed, mean [95% t interval].
"""
import contextlib
import io
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "third_party")]

import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402
from toy_bench_args import toy_world_parser  # noqa: E402  (bench/ is the script's folder, first on sys.path)

import meta_train  # noqa: E402
from bench_toy_protocols import REPORTED, average_per_seed, per_seed, run_protocol  # noqa: E402
from tools import tables  # noqa: E402
from fileio.atomic import write_text_atomically  # noqa: E402
from tools.paired import paired_difference  # noqa: E402
from trainers.backbone.clip_loader import checkpoint_fingerprint  # noqa: E402
from clustering import ClusteringSettings, build_split, load_encoded, save_split  # noqa: E402

VARIANTS = {
    "flat k-means, uniform tasks": (dict(method="kmeans", k=16), False),
    "CMHC, uniform tasks": (dict(method="cmhc", k=64, levels=(4, 16)), False),
    "CMHC + complexity-informed tasks": None,  # the demo's (k 64, levels 4 and 16, seed 1)
    "CMHC + tasks + complexity-informed prototypes": (dict(method="cmhc", k=64, levels=(4, 16),
                                                           prototype_strength=1.0), True),
}
PLANS = {"base2new": {"datasets": REPORTED, "source": "", "shots": [16]},
         "fewshot": {"datasets": REPORTED, "source": "", "shots": [1]}}
MEASURES = (("base2new", 16, "H"), ("fewshot", 1, "acc"))


def variant_meta(args, name: str, folder: str) -> str:
    """Cluster the demo's cached features as the variant says, then meta-train on the split (both cached)."""
    settings, adaptive = VARIANTS[name]
    split_file = os.path.join(folder, "clusters", "split.json")
    if not os.path.isfile(split_file):
        encoded = load_encoded(args.features)
        fingerprint = checkpoint_fingerprint(args.clip)
        split = build_split(encoded.image, encoded.text, encoded.ids, ClusteringSettings(seed=1, **settings),
                            fingerprint)
        split.settings.update(feature_cache=os.path.abspath(args.features))
        save_split(split, os.path.dirname(split_file))
    meta = os.path.join(folder, "meta", "meta_checkpoint.pth")
    if not os.path.isfile(meta):
        argv = ["--config-file", os.path.join(REPO, "configs", "gram", "toy_coop.yaml"), "--split-file", split_file,
                "--output-dir", os.path.dirname(meta), "--seed", "1", "MODEL.BACKBONE.NAME", args.clip,
                "TRAINER.GRAM.ADAPTIVE_TASKS", str(adaptive)]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            meta_train.main(meta_train.build_parser().parse_args(argv))
    return meta


def main() -> None:
    parser = toy_world_parser(__doc__.splitlines()[0])
    parser.add_argument("--features", default=os.path.join(REPO, "output", "demo", "gram", "clusters", "features"),
                        help="the demo's corpus feature cache")
    parser.add_argument("--baseline", default="output/bench_toy_protocols", help="bench_toy_protocols.py's output")
    parser.add_argument("--demo-meta", default=os.path.join(REPO, "output", "demo", "gram", "coop", "meta_checkpoint.pth"))
    parser.add_argument("--output", default="output/bench_toy_ablation")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    args = parser.parse_args()
    args.clip = args.clip or os.path.join(args.root, "toy_clip", "toy_vit.pt")
    torch.set_num_threads(1)
    os.chdir(REPO)
    started = time.time()
    baseline_root = os.path.join(REPO, args.baseline)
    for protocol, plan in PLANS.items():  # CoOp's runs (already there after bench_toy_protocols.py)
        run_protocol(args, protocol, ["CoOp"], {}, args.baseline, plan)
    coop_runs = tables.scan(baseline_root)
    scores = {}
    for index, name in enumerate(args.variants):
        output = os.path.join(args.output, f"variant{index + 1}") if VARIANTS[name] else args.baseline
        meta = variant_meta(args, name, os.path.join(REPO, output)) if VARIANTS[name] else args.demo_meta
        for protocol, plan in PLANS.items():
            run_protocol(args, protocol, ["CoOp_GRAM"], {"CoOp_GRAM": meta}, output, plan)
        runs = tables.scan(os.path.join(REPO, output))
        scores[name] = {m: average_per_seed([per_seed(runs, p, "CoOp_GRAM", d, s) for d in REPORTED], m)
                        for p, s, m in MEASURES}
    coop = {m: average_per_seed([per_seed(coop_runs, p, "CoOp", d, s) for d in REPORTED], m) for p, s, m in MEASURES}
    rows, previous = [], None
    for name, score in scores.items():
        row = [name]
        for _, _, measure in MEASURES:
            mean = sum(score[measure].values()) / len(score[measure])
            row += [f"{mean:.2f}", str(paired_difference(score[measure], coop[measure])),
                    str(paired_difference(score[measure], previous[measure])) if previous else ""]
        rows.append(row)
        previous = score
    headers = ["CoOp_GRAM on", "b2n H (16 shots)", "vs CoOp", "vs row above", "1-shot acc.", "vs CoOp", "vs row above"]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    title = (f"Ablation over the clustering stage, mean of {', '.join(REPORTED)}; seeds {args.seeds}; "
             "differences paired by seed, mean [95% t interval]")
    print(f"\n{title}\n\n{table}\n\n{time.time() - started:.0f} s")
    write_text_atomically(os.path.join(REPO, args.output, "ablation.md"), f"{title}\n\n{table}\n")


if __name__ == "__main__":
    main()
