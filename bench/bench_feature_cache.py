"""Whole CoOp runs with and without the feature cache (issue 17), end to end through ``train.py``.

Each run is a fresh ``python train.py`` (start-up, CLIP loading, cache build, every epoch and the
final test included); its wall time and its CPU time (user + sys of the process and its loader
workers) are measured. Uncached and cached runs alternate within each round, so a change of load
on the machine hits both; min / median / max are over rounds. Two setups:

* ``vitb16``: the 50-epoch ViT-B/16 config (``configs/trainers/CoOp/vit_b16_ep50.yaml``) with a
  randomly initialised CLIP of ViT-B/16's widths (image tower 768 wide, patch 16, 224 px; text
  tower 512 wide; OpenAI state-dict format) but 4 of its 12 layers in each tower, so that the
  uncached run fits a shared 2-core machine (both towers are cut alike, so the image / text cost
  ratio that sets the speed-up stays ViT-B/16's). Kept tiny: a Caltech101-layout fixture of
  224-pixel JPEGs, 2 classes x 4 shots (one batch per epoch), ``DATALOADER.NUM_WORKERS 1``; the
  rest is the config's.
* ``tiny``: the 10-epoch tiny config (``tiny_ep10.yaml``: 64-wide, 2-layer tiny CLIP at 32 px,
  batch 8) on 10 classes x 16 shots of the same fixture, where the image tower costs little, with
  ``CACHE_VIEWS`` from 1 up to the number of epochs.

    python bench/bench_feature_cache.py [--setup vitb16|tiny|all] [--rounds N] [--views 1 50] [--threads 1]
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "third_party")]

from tabulate import tabulate  # noqa: E402

SETUPS = {
    "vitb16": {"config": "vit_b16_ep50.yaml", "classes": 2, "shots": 4, "epochs": 50, "views": [1],
               "opts": ["DATALOADER.NUM_WORKERS", "1"]},
    "tiny": {"config": "tiny_ep10.yaml", "classes": 10, "shots": 16, "epochs": 10, "views": [1, 5, 10],
             "opts": []},
}
VITB16_LAYERS = 4  # of ViT-B/16's 12 per tower
VITB16_SIZES = dict(embed_dim=512, image_resolution=224, vision_layers=VITB16_LAYERS, vision_width=768,
                    vision_patch_size=16, transformer_width=512, transformer_layers=VITB16_LAYERS)


def prepare(work_dir: str, setups: List[str]) -> Dict[str, str]:
    """The fixtures and checkpoints of ``setups`` under ``work_dir`` (built once)."""
    from datasets.fixtures import build_fixture
    from testing.tiny_clip import ensure_tiny_clip

    checkpoints = {"tiny": lambda: ensure_tiny_clip(os.path.join(work_dir, "tiny_vit.pt")),
                   "vitb16": lambda: ensure_tiny_clip(
                       os.path.join(work_dir, f"vitb16_widths_{VITB16_LAYERS}_layers.pt"), **VITB16_SIZES)}
    paths = {}
    for setup in setups:
        spec = SETUPS[setup]
        paths[setup] = checkpoints[setup]()
        root = paths[f"{setup}_root"] = os.path.join(work_dir, f"data_{spec['classes']}_classes")
        if not os.path.isdir(os.path.join(root, "caltech-101")):
            # a per-class train split of 2 * shots (half of the images), the rest for val and test
            build_fixture("Caltech101", root, num_classes=spec["classes"], images_per_class=4 * spec["shots"],
                          image_size=224)
    return paths


def run_train(paths: Dict[str, str], setup: str, views: int, output_dir: str, threads: int) -> Dict[str, float]:
    """One ``train.py`` run; ``views == 0`` is the uncached path. Returns wall and CPU seconds."""
    spec = SETUPS[setup]
    command = [
        sys.executable, os.path.join(REPO, "train.py"), "--root", paths[f"{setup}_root"], "--trainer", "CoOp",
        "--dataset-config-file", os.path.join(REPO, "configs/datasets/caltech101.yaml"),
        "--config-file", os.path.join(REPO, "configs/trainers/CoOp", spec["config"]),
        "--output-dir", output_dir, "--seed", "1",
        "MODEL.BACKBONE.NAME", paths[setup], "DATASET.NUM_SHOTS", str(spec["shots"]),
        "DATASET.SUBSAMPLE_CLASSES", "all", "TRAIN.PRINT_FREQ", "1000", *spec["opts"],
        "TRAINER.COOP.CACHE_IMAGE_FEATURES", str(views > 0), "TRAINER.COOP.CACHE_VIEWS", str(max(views, 1)),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join([REPO, os.path.join(REPO, "third_party")])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def spread(values: List[float]) -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


def bench_setup(paths: Dict[str, str], setup: str, views: List[int], rounds: int, threads: int, work_dir: str) -> dict:
    cases = [0, *views]
    runs = {case: [] for case in cases}
    for round_index in range(rounds):
        for case in cases:
            output_dir = os.path.join(work_dir, "runs", f"{setup}_views{case}_round{round_index}")
            shutil.rmtree(output_dir, ignore_errors=True)  # train.py would resume a finished run
            runs[case].append(run_train(paths, setup, case, output_dir, threads))
    result = {"runs": {str(case): timings for case, timings in runs.items()}, "ratios": {}}
    for case in cases[1:]:
        result["ratios"][str(case)] = {
            key: [plain[key] / cached[key] for plain, cached in zip(runs[0], runs[case])] for key in ("cpu_s", "wall_s")}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--setup", choices=(*SETUPS, "all"), default="all")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--views", type=int, nargs="*", default=None,
                        help="CACHE_VIEWS of the cached runs (default: vitb16 1; tiny 1 5 10)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of each run (OMP/MKL_NUM_THREADS)")
    parser.add_argument("--work-dir", default="", help="fixture, checkpoints and run folders (default: a temp dir)")
    parser.add_argument("--out", default="", help="write the results as JSON here")
    args = parser.parse_args()
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_feature_cache_")
    setups = list(SETUPS) if args.setup == "all" else [args.setup]
    paths = prepare(work_dir, setups)
    results = {"threads": args.threads, "rounds": args.rounds}
    for setup in setups:
        spec = SETUPS[setup]
        views = args.views or spec["views"]
        results[setup] = outcome = bench_setup(paths, setup, views, args.rounds, args.threads, work_dir)
        rows = [["uncached", spread([r["cpu_s"] for r in outcome["runs"]["0"]]),
                 spread([r["wall_s"] for r in outcome["runs"]["0"]]), "", ""]]
        for view_count in views:
            timings, ratio = outcome["runs"][str(view_count)], outcome["ratios"][str(view_count)]
            rows.append([f"cached, CACHE_VIEWS {view_count}", spread([r["cpu_s"] for r in timings]),
                         spread([r["wall_s"] for r in timings]), spread(ratio["cpu_s"]), spread(ratio["wall_s"])])
        print(f"\n{setup}: {spec['config']}, {spec['classes']} classes x {spec['shots']} shots, "
              f"{spec['epochs']} epochs, {args.threads} thread(s), {args.rounds} round(s); min / median / max")
        print(tabulate(rows, headers=["CoOp run", "CPU (s)", "wall (s)", "speed-up CPU (x)", "speed-up wall (x)"]))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
