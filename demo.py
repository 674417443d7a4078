"""The demo: GRAM end to end on the toy world, on a CPU.

    python demo.py            # the full demo (world + tiny CLIP built on the first run)
    python demo.py --quick    # a miniature run in CI: tiny world, one seed, a few epochs

Stages, each the command a user would type (and cached, so a second run redoes nothing):
1. the toy world and its tiny CLIP (``make_toy_world.py``),
2. the clustering stage over the world's image-text corpus (``cluster.py``, CMHC),
3. GRAM meta-training of CoOp prompts (``meta_train.py``),
4. base-to-new with ZeroshotCLIP, CoOp and CoOp_GRAM over seeds (``run_protocol.py base2new``),
   which prints the results table and writes it (Markdown, CSV, plot) next to the runs.
"""
import argparse
import os
import subprocess
import sys
import time

from tools.omp_wait import sleep_while_waiting

sleep_while_waiting()  # before torch loads: a shared CPU must not make waiting OpenMP threads spin

from fileio.stage_files import META_CHECKPOINT_NAME  # noqa: E402
from tools.help_format import DefaultsHelpFormatter  # noqa: E402

REPO = os.path.dirname(os.path.abspath(__file__))
PRESETS = {
    # world size, clustering (k leaves, CMHC levels), meta config, trainer config, seeds, datasets
    "full": {"world": "default", "k": 64, "levels": "4,16", "meta": "toy_coop", "config": "toy_b2n",
             "seeds": ["1", "2", "3"], "datasets": ["toy_color_shapes", "toy_shapes"],
             "shots": "16", "opts": []},
    "quick": {"world": "tiny", "k": 16, "levels": "2,4", "meta": "toy_coop", "config": "toy_b2n",
              "seeds": ["1"], "datasets": ["toy_color_shapes"], "shots": "4",
              "opts": ["OPTIM.MAX_EPOCH", "1"],
              "meta_opts": ["OPTIM.MAX_EPOCH", "1", "TRAINER.GRAM.ITERS_PER_EPOCH", "3", "TRAINER.GRAM.VAL_TASKS", "2"]},
}


def banner(text: str) -> None:
    print(f"\n{'=' * 78}\n== {text}\n{'=' * 78}", flush=True)


def run(argv: list) -> None:
    """Run a root entry point with this interpreter, from the repository root."""
    print("$ " + " ".join(argv), flush=True)
    subprocess.run([sys.executable] + argv, cwd=REPO, check=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="miniature run (CI)")
    parser.add_argument("--root", default=None, help="where the toy world goes (default data/toy[_quick])")
    parser.add_argument("--output", default=None, help="output root (default output/demo[_quick])")
    parser.add_argument("--jobs", type=int, default=2, help="train.py runs at once")
    parser.add_argument("--backbone", "--clip", dest="backbone", default=None,
                        help="use this CLIP checkpoint instead of pretraining the toy CLIP")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    preset = PRESETS["quick" if args.quick else "full"]
    suffix = "_quick" if args.quick else ""
    root = os.path.abspath(args.root or os.path.join(REPO, "data", f"toy{suffix}"))
    output = os.path.abspath(args.output or os.path.join(REPO, "output", f"demo{suffix}"))
    started = time.time()
    timings = {}

    banner("1/4 toy world and its tiny CLIP")
    from datasets.toy_world import build_world, ensure_toy_clip

    stage = time.time()
    world = build_world(root, seed=0, size=preset["world"])
    if args.backbone:
        clip_path = os.path.abspath(args.backbone)
        print(f"using the given CLIP {clip_path}")
    else:
        clip_path = ensure_toy_clip(root, seed=0, size=preset["world"])
        run(["make_toy_world.py", "--root", root, "--size", preset["world"]])  # prints the zero-shot summary
    timings["world + CLIP"] = time.time() - stage

    banner("2/4 clustering stage (CMHC over CLIP image-text features)")
    stage = time.time()
    clusters = os.path.join(output, "gram", "clusters")
    if not os.path.isfile(os.path.join(clusters, "split.json")):
        run(["cluster.py", "--corpus", world.corpus_manifest, "--backbone", clip_path, "--output-dir", clusters,
             "--method", "cmhc", "--k", str(preset["k"]), "--levels", preset["levels"], "--seed", "1"])
    else:
        print(f"reusing {clusters}/split.json")
    timings["clustering"] = time.time() - stage

    banner("3/4 GRAM meta-training (prompt init + gradient regulator)")
    stage = time.time()
    meta_dir = os.path.join(output, "gram", "coop")
    meta_ckpt = os.path.join(meta_dir, META_CHECKPOINT_NAME)
    if not os.path.isfile(meta_ckpt):
        run(["meta_train.py", "--config-file", f"configs/gram/{preset['meta']}.yaml",
             "--split-file", os.path.join(clusters, "split.json"), "--output-dir", meta_dir, "--seed", "1",
             "MODEL.BACKBONE.NAME", clip_path] + preset.get("meta_opts", []))
    else:
        print(f"reusing {meta_ckpt}")
    timings["meta-training"] = time.time() - stage

    banner("4/4 base-to-new: ZeroshotCLIP vs CoOp vs CoOp_GRAM")
    stage = time.time()
    run(["run_protocol.py", "base2new", "--trainer", "ZeroshotCLIP", "CoOp", "CoOp_GRAM",
         "--datasets", *preset["datasets"], "--seeds", *preset["seeds"], "--shots", preset["shots"],
         "--config", preset["config"], "--root", root, "--output", output, "--gpus", "cpu",
         "--jobs", str(args.jobs), "--persistent-workers", "--n-ctx", "4", "--meta-ckpt", meta_ckpt, "--python", sys.executable,
         "--opts", "MODEL.BACKBONE.NAME", clip_path, *preset["opts"]])
    timings["base-to-new runs"] = time.time() - stage

    banner("summary")
    for name, seconds in timings.items():
        print(f"  {name:<18} {seconds:7.1f} s")
    print(f"  {'total':<18} {time.time() - started:7.1f} s")
    print(f"\n  toy world:        {root}")
    print(f"  tiny CLIP:        {clip_path}")
    print(f"  clusters:         {clusters}/split.json")
    print(f"  meta checkpoint:  {meta_ckpt}")
    print(f"  runs and tables:  {output}/base2new, {output}/tables/base2new.md (.csv, .png)")


if __name__ == "__main__":
    main()
