"""CPU time per step of the demo's tiny-CLIP pretraining, quiet and beside two CPU-bound processes (issue 16, item 5).

Each measurement is a fresh process (the OpenMP wait policy is read when torch loads) that runs
``--warm-steps`` warm-start steps and ``--contrastive-steps`` contrastive steps of
``datasets.toy_world.pretrain`` with the demo's settings (the ``default`` world's sizes and batch
sizes, torch's default thread count) on random 32-pixel images, after two untimed steps of each. It
reports CPU seconds per step (user + sys of all its threads), the sys share and wall seconds per
step. Conditions, interleaved over rounds:

* OpenMP wait policy: libgomp's default (threads spin while they wait) or ``PASSIVE`` (what
  ``demo.py`` and ``make_toy_world.py`` set, ``tools/omp_wait.py``);
* load: quiet (only whatever else runs on the machine, whose load average is printed) or with two
  busy-loop processes (``while True: pass``, killed after the measurement) beside it;
* and, as a reference for the quiet figure on a machine that is never quiet, one torch thread
  (``OMP_NUM_THREADS=1``: no thread ever waits for another) without the busy loops.

    python bench/bench_pretrain_load.py [--rounds 2] [--warm-steps 40] [--contrastive-steps 4]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "third_party")]

SPINNERS = 2
SPINNER_CODE = "import time\nend = time.time() + {limit}\nwhile time.time() < end:\n    pass\n"
SPINNER_LIMIT_S = 900  # a spinner ends by itself even if this script dies


def measure(warm_steps: int, contrastive_steps: int) -> dict:
    """In this process: per-step CPU and wall seconds of both pretraining stages."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from datasets.toy_world.pretrain import train_contrastive, warm_start_image_tower
    from datasets.toy_world.presets import WORLD_SIZES
    from datasets.toy_world.world import CORPUS_GROUP_SIZE
    from testing.tiny_clip import build_tiny_clip

    settings = WORLD_SIZES["default"].pretrain
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2048, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 4, (2048, 5))
    captions = [f"a photo of {count} {colour} shapes" for count in range(32) for colour in range(64)]
    model = build_tiny_clip("vit", embed_dim=settings.embed_dim, image_resolution=32,
                            vision_layers=settings.vision_layers, vision_width=settings.vision_width,
                            vision_patch_size=settings.vision_patch_size, transformer_width=settings.transformer_width,
                            transformer_layers=settings.transformer_layers).train()
    bar = tqdm(disable=True)

    def warm(steps):
        warm_start_image_tower(model, images, labels, [4] * 5, replace(settings, warm_start_steps=steps), rng, bar)

    def contrastive(steps):
        train_contrastive(model, images, captions, CORPUS_GROUP_SIZE, replace(settings, contrastive_steps=steps), rng, bar)

    result = {"threads": torch.get_num_threads(), "wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}
    for stage, run, steps in (("warm_start", warm, warm_steps), ("contrastive", contrastive, contrastive_steps)):
        run(2)
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        run(steps)
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
        user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
        result[stage] = {"cpu_s": (user + system) / steps, "sys_share": system / max(user + system, 1e-9),
                         "wall_s": wall / steps}
    return result


SETTINGS = {"default": {}, "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}, "1 thread": {"OMP_NUM_THREADS": "1"}}
CONDITIONS = [("default", False), ("default", True), ("PASSIVE", False), ("PASSIVE", True), ("1 thread", False)]


def run_condition(setting: str, loaded: bool, args: argparse.Namespace) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "third_party")]))
    for key in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS"):
        env.pop(key, None)
    env.update(SETTINGS[setting])
    spinners = []
    if loaded:
        spinners = [subprocess.Popen([sys.executable, "-c", SPINNER_CODE.format(limit=SPINNER_LIMIT_S)])
                    for _ in range(SPINNERS)]
    try:
        load_before = os.getloadavg()[0]
        output = subprocess.run([sys.executable, os.path.abspath(__file__), "--measure", str(args.warm_steps),
                                 str(args.contrastive_steps)], env=env, check=True, capture_output=True, text=True)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    result = json.loads(output.stdout.strip().splitlines()[-1])
    result.update(loaded=loaded, load_average_before=load_before)
    return result


def spread(values) -> str:
    return f"{min(values):.4f} / {statistics.median(values):.4f} / {max(values):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warm-steps", type=int, default=40)
    parser.add_argument("--contrastive-steps", type=int, default=4)
    parser.add_argument("--out", default="", help="write the results as JSON here")
    parser.add_argument("--measure", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    from tabulate import tabulate

    conditions = CONDITIONS
    results = {condition: [] for condition in conditions}
    for round_index in range(args.rounds):
        shift = round_index % len(conditions)
        for condition in conditions[shift:] + conditions[:shift]:
            results[condition].append(run_condition(*condition, args))
    rows = []
    for (policy, loaded), runs in results.items():
        for stage in ("warm_start", "contrastive"):
            rows.append([policy, f"+{SPINNERS} busy loops" if loaded else "quiet", stage,
                         spread([r[stage]["cpu_s"] for r in runs]),
                         f"{statistics.median([r[stage]['sys_share'] for r in runs]):.0%}",
                         spread([r[stage]["wall_s"] for r in runs]),
                         " ".join(f"{r['load_average_before']:.1f}" for r in runs)])
    print(f"tiny-CLIP pretraining steps ({results[conditions[0]][0]['threads']} torch threads by default, "
          f"{os.cpu_count()} cores, "
          f"{args.rounds} interleaved rounds; min / median / max)")
    print(tabulate(rows, headers=["setting", "load", "stage", "CPU s/step", "sys", "wall s/step",
                                  "load avg before"], tablefmt="github"))
    quiet_default = statistics.median(r["warm_start"]["cpu_s"] for r in results[("default", False)])
    for policy in ("default", "PASSIVE"):
        quiet = statistics.median(r["warm_start"]["cpu_s"] for r in results[(policy, False)])
        loaded = statistics.median(r["warm_start"]["cpu_s"] for r in results[(policy, True)])
        print(f"{policy}: warm-start CPU per step loaded / quiet = {loaded / quiet:.2f}x "
              f"(/ quiet with the default policy: {loaded / quiet_default:.2f}x)")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({f"{policy},{'loaded' if loaded else 'quiet'}": runs
                       for (policy, loaded), runs in results.items()}, handle, indent=2)


if __name__ == "__main__":
    main()
