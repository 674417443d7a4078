"""Benchmark of GRAM beyond one process (issue 14): meta-training memory vs corpus size, and distributed encoding.

- meta-memory: for each of ``--sizes`` (default 10,000 and 100,000 pairs) a corpus of generated 64 px JPEGs
  (``datasets.fixtures.build_corpus_fixture``) is encoded and clustered (``cluster.py``, tiny CLIP at 32 px,
  k-means, 16 domains), then VPT is meta-trained on it with pixels streamed from the corpus (``meta_train.py``,
  ``configs/gram/tiny_vpt.yaml``, 2 pixel workers, one epoch of ``--iters`` outer steps). Each stage runs in
  its own process; reported: peak RSS of the meta-training process and of its largest DataLoader worker,
  the encoding's CPU seconds per pair, and the feature cache's bytes per pair. Target: the 100k peak RSS at
  most 1.2x the 10k one.
- encode: one corpus of ``--encode-pairs`` pairs encoded by ``cluster.py`` in one process and by
  ``torchrun --nproc-per-node 2`` (gloo), in ``--encode-rounds`` interleaved rounds (the order rotates each
  round): wall time, CPU time of all processes, the throughput ratio per round as min / median / max, and
  whether the two feature caches are identical.

Corpora are written under ``--work`` (default a temporary folder) and removed at the end.

Usage: nice -n 10 python bench/bench_scale.py [--sizes 10000,100000] [--encode-pairs 4000] [--part all|meta-memory|encode]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from tabulate import tabulate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from datasets.fixtures import build_corpus_fixture  # noqa: E402
from testing.tiny_clip import build_tiny_clip, save_clip_state_dict  # noqa: E402
from interleaved import format_spread, rotated  # noqa: E402  (bench/ is the script's folder, first on sys.path)

# Runs a script's main() as __main__ and prints, last, the peak RSS (KiB) of this process and of its children.
WITH_PEAK_RSS = """
import resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print("PEAK_RSS_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)
"""


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "third_party"), REPO]),
                OMP_NUM_THREADS="1")


def _run(command: list[str]) -> tuple[str, float, float]:
    """Run ``command`` in the repository; return its stdout, wall seconds and CPU seconds (all its processes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result.stdout, wall, cpu


def _cluster_command(corpus: str, clip: str, out: str) -> list[str]:
    return ["cluster.py", "--corpus", corpus, "--clip", clip, "--out", out, "--method", "kmeans", "--k", "16",
            "--batch-size", "256", "--shard-size", "4096", "--device", "cpu"]


def _dir_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)


def meta_memory(work: str, clip: str, sizes: list[int], iters: int) -> list[list]:
    rows = []
    for size in sizes:
        folder = os.path.join(work, f"corpus_{size}")
        start = time.perf_counter()
        corpus = build_corpus_fixture(folder, n=size, fmt="tsv", image_size=64)
        generated = time.perf_counter() - start
        _, encode_wall, encode_cpu = _run([sys.executable] + _cluster_command(corpus.source, clip,
                                                                               os.path.join(folder, "split")))
        cache_bytes = _dir_bytes(os.path.join(folder, "split", "features"))
        output, meta_wall, meta_cpu = _run([
            sys.executable, "-c", WITH_PEAK_RSS, "meta_train.py", "--config-file", "configs/gram/tiny_vpt.yaml",
            "--split-file", os.path.join(folder, "split", "split.json"), "--backbone", clip, "--corpus", corpus.source,
            "--output-dir", os.path.join(folder, "meta"), "--seed", "1", "OPTIM.MAX_EPOCH", "1",
            "TRAINER.GRAM.ITERS_PER_EPOCH", str(iters), "TRAINER.GRAM.VAL_TASKS", "2",
            "TRAINER.GRAM.PIXEL_WORKERS", "2"])
        peak_self, peak_worker = (int(value) for value in output.split("PEAK_RSS_KIB")[1].split()[:2])
        rows.append([size, f"{generated:.0f}", f"{encode_cpu / size * 1e3:.2f}", f"{cache_bytes / size:.0f}",
                     f"{meta_wall:.1f}", f"{peak_self / 1024:.0f}", f"{peak_worker / 1024:.0f}"])
        shutil.rmtree(folder)
    return rows


def encode_throughput(work: str, clip: str, pairs: int, rounds: int) -> dict:
    """Encode the same corpus with 1 process and with 2 gloo processes, in ``rounds`` interleaved rounds
    (the order rotates each round, every run into a fresh folder); per-round wall and CPU times."""
    from clustering import load_encoded

    corpus = build_corpus_fixture(os.path.join(work, "encode_corpus"), n=pairs, fmt="tsv", image_size=64)
    launchers = {"1 process": [sys.executable],
                 "2 gloo processes": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                      "--nproc-per-node=2"]}
    times = {name: {"wall_s": [], "cpu_s": []} for name in launchers}
    encoded = {}
    for round_index in range(rounds):
        for name in rotated(list(launchers), round_index):
            out = os.path.join(work, f"encode_{name.split()[0]}_{round_index}")
            _, wall, cpu = _run(launchers[name] + _cluster_command(corpus.source, clip, out))
            times[name]["wall_s"].append(wall)
            times[name]["cpu_s"].append(cpu)
            encoded.setdefault(name, load_encoded(os.path.join(out, "features")))
            shutil.rmtree(out)
    one, two = encoded["1 process"], encoded["2 gloo processes"]
    identical = one.ids == two.ids and np.array_equal(one.image, two.image) and np.array_equal(one.text, two.text)
    shutil.rmtree(os.path.join(work, "encode_corpus"))
    return {"times": times, "identical": identical}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--part", choices=("all", "meta-memory", "encode"), default="all")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--iters", type=int, default=10, help="outer steps of the meta-training epoch")
    parser.add_argument("--encode-pairs", type=int, default=4000)
    parser.add_argument("--encode-rounds", type=int, default=3, help="interleaved rounds of the encoding ratio")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench_scale_", dir=args.work)
    try:
        clip = save_clip_state_dict(build_tiny_clip(embed_dim=64, image_resolution=32),
                                    os.path.join(work, "tiny_clip.pt"))
        if args.part in ("all", "meta-memory"):
            rows = meta_memory(work, clip, [int(size) for size in args.sizes.split(",")], args.iters)
            print(tabulate(rows, headers=["pairs", "corpus written (s)", "encode CPU ms/pair", "cache bytes/pair",
                                          "meta-train wall (s)", "meta-train peak RSS (MiB)",
                                          "largest worker peak RSS (MiB)"], floatfmt=".0f", disable_numparse=True))
            ratio = float(rows[-1][5]) / float(rows[0][5])
            workers = float(rows[-1][6]) / float(rows[0][6])
            print(f"peak RSS ratio {rows[-1][0]} vs {rows[0][0]} pairs: {ratio:.3f} (workers {workers:.3f}); "
                  f"target <= 1.2")
        if args.part in ("all", "encode"):
            result = encode_throughput(work, clip, args.encode_pairs, args.encode_rounds)
            times = result["times"]
            print(tabulate([[name, format_spread(clock["wall_s"], digits=1), format_spread(clock["cpu_s"], digits=1)]
                            for name, clock in times.items()],
                           headers=["cluster.py", "wall (s) min / median / max", "CPU (s) min / median / max"]))
            throughput = [one / two for one, two in zip(times["1 process"]["wall_s"],
                                                         times["2 gloo processes"]["wall_s"])]
            cpu_cost = [two / one for one, two in zip(times["1 process"]["cpu_s"],
                                                       times["2 gloo processes"]["cpu_s"])]
            print(f"throughput 2 vs 1 process over {args.encode_rounds} interleaved rounds, min / median / max: "
                  f"{format_spread(throughput)}x (wall); CPU time {format_spread(cpu_cost)}x; "
                  f"features identical: {result['identical']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
