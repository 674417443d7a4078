"""Items, generated splits and few-shot picks of the toolbox's loaders against CoOp's own loaders, same disk.

    python bench/bench_coop_parity.py --coop /path/to/CoOp [--work-dir DIR]

Writes miniatures of the datasets (``datasets.fixtures``; no split files, so the nine datasets without an
official split generate one), then, for each dataset, runs the same sequence of loads with CoOp's unmodified
``datasets/*.py`` (on the bundled engine, in a subprocess that imports CoOp's ``datasets`` package) and with
the toolbox's (another subprocess), on the same folder: a load per (shots, seed), seeds in order, so the
first one generates the split and the few-shot caches as it would in a CoOp sweep. Caches written by one
side are removed before the other runs. Reports, per dataset, the items compared and how many positions of
train / val / test differ, with the default ``DATASET.IMAGE_ORDER filesystem`` and with ``sorted`` (the
toolbox's previous behaviour).
"""
import argparse
import glob
import importlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THIRD_PARTY = os.path.join(REPO, "third_party")

# DATASET.NAME: (CoOp module, classes, images per class)
DATASETS = {
    "ImageNet": ("imagenet", 100, 12),
    "ImageNetV2": ("imagenetv2", 1000, 4),  # CoOp's loader reads folders 0..999
    **{name: (module, 50, 6) for name, module in (("ImageNetSketch", "imagenet_sketch"), ("ImageNetA", "imagenet_a"),
                                                  ("ImageNetR", "imagenet_r"))},
    # the datasets whose split CoOp generates: 10 classes of 20 images each
    **{name: (module, 10, 20) for name, module in (
        ("Caltech101", "caltech101"), ("DescribableTextures", "dtd"), ("EuroSAT", "eurosat"),
        ("Food101", "food101"), ("OxfordPets", "oxford_pets"), ("StanfordCars", "stanford_cars"),
        ("OxfordFlowers", "oxford_flowers"), ("SUN397", "sun397"), ("UCF101", "ucf101"))},
}
TEST_ONLY = {"ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR"}
SHOTS, SEEDS = (1, 4), (1, 2, 3)


def loads(name):
    """The (shots, seed) sequence of a sweep; test-only datasets are loaded once."""
    return [(0, 1)] if name in TEST_ONLY else [(k, s) for s in SEEDS for k in SHOTS]


def cfg_for(root, name, shots, seed, image_order):
    from dassl.config import get_cfg_default

    cfg = get_cfg_default()
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"
    cfg.DATASET.IMAGE_ORDER = image_order
    cfg.DATASET.ROOT, cfg.DATASET.NAME, cfg.DATASET.NUM_SHOTS, cfg.SEED = root, name, shots, seed
    return cfg


def run_side(side, root, name, image_order, out):
    """In this process: load ``name`` for every (shots, seed) with CoOp's or the toolbox's loader."""
    from dassl.data.datasets import DATASET_REGISTRY

    if side == "coop":
        importlib.import_module(f"datasets.{DATASETS[name][0]}")
    else:
        import datasets  # noqa: F401  (registers the toolbox's datasets)
    results = {}
    for shots, seed in loads(name):
        random.seed(seed)  # CoOp's train.py: set_random_seed(cfg.SEED) just before building the dataset
        dataset = DATASET_REGISTRY.get(name)(cfg_for(root, name, shots, seed, image_order))
        results[f"{shots}-{seed}"] = {
            split: [[os.path.relpath(d.impath, root), d.label, d.classname] for d in (getattr(dataset, split) or [])]
            for split in ("train_x", "val", "test")
        }
    with open(out, "w") as file:
        json.dump(results, file)


def remove_caches(dataset_dir):
    for path in glob.glob(os.path.join(dataset_dir, "split_zhou_*.json")) + [os.path.join(dataset_dir, "preprocessed.pkl")]:
        if os.path.exists(path):
            os.remove(path)
    shutil.rmtree(os.path.join(dataset_dir, "split_fewshot"), ignore_errors=True)


def side_output(side, coop_dir, root, name, image_order, work):
    out = os.path.join(work, f"{side}-{name}-{image_order}.json")
    path = [coop_dir, THIRD_PARTY] if side == "coop" else [REPO, THIRD_PARTY]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    subprocess.run([sys.executable, os.path.abspath(__file__), "--side", side, "--root", root, "--name", name,
                    "--image-order", image_order, "--out", out], check=True, env=env, cwd=work,
                   stdout=subprocess.DEVNULL)
    with open(out) as file:
        return json.load(file)


def differences(coop, ours):
    """(items compared, differing positions) per split over every load."""
    counts = {}
    for key, splits in coop.items():
        for split, items in splits.items():
            mine = ours[key][split]
            total, diff = counts.get(split, (0, 0))
            differing = sum(a != b for a, b in zip(items, mine)) + abs(len(items) - len(mine))
            counts[split] = (total + len(items), diff + differing)
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--coop", help="a checkout of KaiyangZhou/CoOp (its datasets/ are run unmodified)")
    parser.add_argument("--work-dir", default="", help="where to write the fixtures (default: a temporary folder)")
    parser.add_argument("--side", choices=("coop", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--image-order", default="filesystem", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        run_side(args.side, args.root, args.name, args.image_order, args.out)
        return
    if not args.coop or not os.path.isfile(os.path.join(args.coop, "datasets", "imagenet.py")):
        parser.error("--coop must name a CoOp checkout (with datasets/imagenet.py)")
    sys.path[:0] = [REPO, THIRD_PARTY]
    from tabulate import tabulate

    from datasets.fixtures import build_fixture

    work = args.work_dir or tempfile.mkdtemp(prefix="coop_parity_")
    rows = []
    for name, (_, classes, per_class) in DATASETS.items():
        root = os.path.join(work, name)
        fixture = build_fixture(name, root, num_classes=classes, images_per_class=per_class, with_split=False)
        coop = side_output("coop", os.path.abspath(args.coop), root, name, "filesystem", work)
        row = [name, len(loads(name))]
        for order in ("filesystem", "sorted"):
            remove_caches(fixture.dataset_dir)
            counts = differences(coop, side_output("ours", "", root, name, order, work))
            row.append(" / ".join(f"{diff}/{total}" for total, diff in (counts[s] for s in ("train_x", "val", "test"))))
        rows.append(row)
    print(tabulate(rows, headers=["dataset", "loads", "differing train/val/test (default)",
                                  "differing with IMAGE_ORDER sorted"]))
    print(f"fixtures in {work}")


if __name__ == "__main__":
    main()
