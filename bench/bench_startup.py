"""Start-up benchmark (issue 17, item 2): each entry point's ``--help`` and the time to the first training step.

Both are timed in fresh processes, as a user starts them, interleaved over ``--rounds`` rounds (one
uncounted warm-up round first, so Python's bytecode caches are written): min / median / max of the wall
time and of the CPU time (user + system, the process and the subprocesses it waited for), which load on a
shared machine distorts less. ``--compare DIR`` times a second checkout (e.g. the commit before a change)
in the same rounds, alternating with this one.

The first training step is the first ``optimizer.step()`` of a tiny CoOp run (``train.py --trainer CoOp``
with ``configs/trainers/CoOp/tiny_ep10.yaml``, a 4-class Caltech101-layout fixture, a tiny ViT CLIP):
the process registers torch's global optimizer post-step hook, runs ``train.py`` unchanged, reports its
clock at that hook and exits. The same run with the feature cache (``CACHE_VIEWS 10``, 10 classes x 16 shots
of 224-pixel JPEGs, the setup of issue 17's item 1 and of ``bench_feature_cache.py --setup tiny``) is timed
too: its first step comes after the cache build, which is what a cached tiny run (every toy-world recipe)
waits for before its first epoch. The same run as the second job of a persistent worker (``tools/train_worker.py``,
what ``run_protocol.py``'s CPU slots run) is timed from that job's start: the start-up a sweep pays per run.

    python bench/bench_startup.py [--rounds 5] [--compare OTHER_CHECKOUT] [--work-dir DIR] [--out results.json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# Runs train.py as __main__ and stops at the end of its first optimizer step.
FIRST_STEP_PROBE = """
import json, os, resource, runpy, sys, time
import torch.optim.optimizer as optimizer

def first_step(*_):
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)
    print("FIRST_STEP " + json.dumps({"cpu_s": cpu}), flush=True)
    os._exit(0)

optimizer.register_optimizer_step_post_hook(first_step)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


HELP_ENTRY_POINTS = ("train.py", "meta_train.py", "cluster.py", "make_toy_world.py")

# Runs the same tiny CoOp job twice in one persistent worker (tools/train_worker.py, as run_protocol.py's
# CPU slots do) and reports the second job's clock from its start to the end of its first optimizer step.
WARM_SLOT_PROBE = """
import json, os, resource, sys, time
sys.path.insert(0, os.getcwd())
import torch.optim.optimizer as optimizer
from tools.train_worker import run_request

def cpu():
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))

started = []
LOG = os.path.join(os.path.dirname(json.loads(sys.argv[1])[0][9]), "worker.log")  # beside the jobs' output dirs
os.makedirs(os.path.dirname(LOG), exist_ok=True)

def first_step(*_):
    if len(started) == 2:
        print("FIRST_STEP " + json.dumps({"cpu_s": cpu() - started[1][0], "wall_s": time.perf_counter() - started[1][1]}),
              file=sys.__stdout__, flush=True)
        os._exit(0)

optimizer.register_optimizer_step_post_hook(first_step)
for argv in json.loads(sys.argv[1]):
    started.append((cpu(), time.perf_counter()))
    code = run_request({"script": "train.py", "argv": argv, "log": LOG})
    if code:
        sys.exit(open(LOG).read()[-3000:])
"""


def prepare(work_dir: str) -> tuple:
    """The dataset fixture and the tiny CLIP the runs use (built once in work_dir)."""
    from datasets.fixtures import build_fixture
    from testing.tiny_clip import ensure_tiny_clip

    root = os.path.join(work_dir, "data")
    if not os.path.isdir(os.path.join(root, "caltech-101")):
        build_fixture("Caltech101", root, num_classes=4, images_per_class=8, image_size=40)
    cached_root = os.path.join(work_dir, "data_10_classes")
    if not os.path.isdir(os.path.join(cached_root, "caltech-101")):
        build_fixture("Caltech101", cached_root, num_classes=10, images_per_class=64, image_size=224)
    return root, cached_root, ensure_tiny_clip(os.path.join(work_dir, "tiny_vit.pt"))


def child_env(repo: str) -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([repo, os.path.join(repo, "third_party")]),
                OMP_NUM_THREADS="1")


def timed(repo: str, argv: list, marker: str = "") -> dict:
    """Wall and CPU seconds of a fresh process run in ``repo``; with ``marker``, up to the line it prints
    starting with it (the CPU time, and the wall time if given, it reports there)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=repo, env=child_env(repo), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{' '.join(argv)} exited {process.returncode}:\n{output[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    if marker:
        lines = [line for line in output.splitlines() if line.startswith(marker)]
        if not lines:
            raise RuntimeError(f"{' '.join(argv)} never reached its first training step:\n{output[-3000:]}")
        record = json.loads(lines[0][len(marker):])
        cpu, wall = record["cpu_s"], record.get("wall_s", wall)
    return {"wall_s": wall, "cpu_s": cpu}


# The cached case: issue 17's item-1 setup (10 classes x 16 shots, a cached view per epoch).
CACHED_OPTS = ["DATASET.NUM_SHOTS", "16", "TRAINER.COOP.CACHE_IMAGE_FEATURES", "True", "TRAINER.COOP.CACHE_VIEWS", "10"]


def first_step_argv(root: str, checkpoint: str, output_dir: str, opts: tuple = ()) -> list:
    return [sys.executable, "-c", FIRST_STEP_PROBE, "train.py", "--root", root, "--trainer", "CoOp",
            "--dataset-config-file", "configs/datasets/caltech101.yaml",
            "--config-file", "configs/trainers/CoOp/tiny_ep10.yaml", "--output-dir", output_dir,
            "--seed", "1", "DATASET.NUM_SHOTS", "4", "MODEL.BACKBONE.NAME", checkpoint, *opts]


def warm_slot_argv(root: str, checkpoint: str, output_dir: str) -> list:
    """Two jobs for one persistent worker: the second one is timed."""
    jobs = [first_step_argv(root, checkpoint, os.path.join(output_dir, f"job{job}"))[4:] for job in (1, 2)]
    return [sys.executable, "-c", WARM_SLOT_PROBE, json.dumps(jobs)]


def summary(samples: list) -> dict:
    return {key: {"min": min(s[key] for s in samples), "median": statistics.median(s[key] for s in samples),
                  "max": max(s[key] for s in samples)} for key in ("wall_s", "cpu_s")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compare", default="", help="another checkout to time in the same rounds")
    parser.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "gram_bench_startup"))
    parser.add_argument("--out", default="", help="also write the figures as JSON")
    args = parser.parse_args()
    root, cached_root, checkpoint = prepare(args.work_dir)
    trees = {"this checkout": REPO}
    if args.compare:
        trees[f"--compare {args.compare}"] = os.path.abspath(args.compare)
    cases = {}
    for index, (tree, repo) in enumerate(trees.items()):
        for entry_point in HELP_ENTRY_POINTS:
            cases[f"{entry_point} --help ({tree})"] = lambda run, repo=repo, entry_point=entry_point: timed(
                repo, [sys.executable, entry_point, "--help"])
        cases[f"tiny CoOp, first training step ({tree})"] = lambda run, repo=repo, index=index: timed(
            repo, first_step_argv(root, checkpoint, os.path.join(args.work_dir, "runs", f"{index}_{run}")),
            "FIRST_STEP ")
        cases[f"tiny CoOp with the feature cache (CACHE_VIEWS 10), first training step ({tree})"] = (
            lambda run, repo=repo, index=index: timed(
                repo, first_step_argv(cached_root, checkpoint,
                                      os.path.join(args.work_dir, "cached", f"{index}_{run}"), CACHED_OPTS),
                "FIRST_STEP "))
        cases[f"tiny CoOp, first training step of a persistent worker's second job ({tree})"] = (
            lambda run, repo=repo, index=index: timed(
                repo, warm_slot_argv(root, checkpoint, os.path.join(args.work_dir, "warm", f"{index}_{run}")),
                "FIRST_STEP "))
    # The floor under any first step: the libraries a CoOp run cannot start without (Dassl's data pipeline
    # is torchvision's; openai-clip's model module imports torchvision and pkg_resources), nothing else.
    cases["import torch, torchvision, clip (the floor)"] = lambda run: timed(
        REPO, [sys.executable, "-W", "ignore", "-c", "import torch, torchvision, clip"])
    samples = {name: [] for name in cases}
    for run in range(args.rounds + 1):  # round 0 warms the caches and is not counted
        for name, case in cases.items():
            sample = case(run)
            if run:
                samples[name].append(sample)
    results = {name: summary(values) for name, values in samples.items()}
    for name, figures in results.items():
        print(f"{name}: " + ", ".join(
            f"{key[:-2]} {f['min']:.2f} / {f['median']:.2f} / {f['max']:.2f} s" for key, f in figures.items())
            + f"  (min / median / max over {args.rounds} rounds)")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
