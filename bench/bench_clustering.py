"""Benchmark of the clustering stage (issue 5): scaling, memory, and CMHC against scikit-learn.

Data: planted hierarchical clusters of image-text pairs (``testing.planted``): 4 coarse groups
x 4 x 4 = 64 fine clusters (the levels [4, 16, 64]), d-dimensional image and text features each,
float32, not normalised (the clustering normalises on the fly). Each size runs in a fresh process
so memory figures do not mix.

- scaling: CMHC (k-means with ``--k`` leaves + hierarchy) at each of ``--sizes``: wall time, CPU time
  (all threads; on a shared machine wall time depends on the load, CPU time much less), peak RSS
  growth during clustering (sampled every 5 ms) relative to the feature matrix (image + text bytes),
  ARI of each level against the planted clusters;
- comparison: on ``--compare-size`` pairs, sklearn ``AgglomerativeClustering`` (ward, on the same
  joint features) vs CMHC, wall and CPU time and ARI at the 64-cluster level; ``--compare-rounds``
  rounds, each in a fresh process, which of the two runs first alternating; min / median / max.

Usage: python bench/bench_clustering.py [--sizes 50000,200000,1000000] [--compare-size 20000]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import threading
import time

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score
from tabulate import tabulate

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from interleaved import format_spread  # noqa: E402  (bench/ is the script's folder, first on sys.path)
from clustering import ClusteringSettings, build_split  # noqa: E402
from clustering.features import PairedFeatures  # noqa: E402
from testing.planted import hierarchical_pairs, labels_at_depth  # noqa: E402
from tools.help_format import DefaultsHelpFormatter  # noqa: E402

BRANCHING = (4, 4, 4)
LEVELS = (4, 16, 64)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Highest resident set size seen while the block runs (sampled every 5 ms)."""

    def __enter__(self) -> "PeakRss":
        self.start = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _timed(function, *args, **kwargs) -> tuple:
    """``(result, wall seconds, CPU seconds of all threads)``."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start, time.process_time() - cpu_start


def scaling_run(num_pairs: int, dim: int, k: int, seed: int) -> dict:
    image, text, labels = hierarchical_pairs(num_pairs, dim, BRANCHING, seed=seed)
    ids = [str(row) for row in range(num_pairs)]
    settings = ClusteringSettings(method="cmhc", k=k, levels=LEVELS, seed=seed)
    with PeakRss() as memory:
        split, seconds, cpu_seconds = _timed(build_split, image, text, ids, settings, clip_fingerprint="bench")
    matrix = image.nbytes + text.nbytes
    aris = [adjusted_rand_score(labels_at_depth(labels, BRANCHING, index), level.assignment)
            for index, level in enumerate(split.levels)]
    return {"pairs": num_pairs, "seconds": seconds, "cpu_seconds": cpu_seconds, "matrix_mb": matrix / 2**20,
            "peak_growth_mb": (memory.peak - memory.start) / 2**20,
            "growth_x_matrix": (memory.peak - memory.start) / matrix, "ari": aris}


def comparison_run(num_pairs: int, dim: int, k: int, seed: int, sklearn_first: bool = False) -> dict:
    image, text, labels = hierarchical_pairs(num_pairs, dim, BRANCHING, seed=seed)
    ids = [str(row) for row in range(num_pairs)]
    settings = ClusteringSettings(method="cmhc", k=k, levels=LEVELS, seed=seed)
    joint = PairedFeatures(image, text).joint(np.arange(num_pairs))
    ward = AgglomerativeClustering(n_clusters=LEVELS[-1], linkage="ward")
    if sklearn_first:
        sklearn_labels, sklearn_seconds, sklearn_cpu = _timed(ward.fit_predict, joint)
    (split, ours_seconds, ours_cpu) = _timed(build_split, image, text, ids, settings, clip_fingerprint="bench")
    if not sklearn_first:
        sklearn_labels, sklearn_seconds, sklearn_cpu = _timed(ward.fit_predict, joint)
    return {"pairs": num_pairs, "ours_seconds": ours_seconds, "sklearn_seconds": sklearn_seconds,
            "ours_cpu": ours_cpu, "sklearn_cpu": sklearn_cpu,
            "ours_ari": adjusted_rand_score(labels, split.levels[-1].assignment),
            "sklearn_ari": adjusted_rand_score(labels, sklearn_labels)}


def _in_fresh_process(function, *args) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--sizes", default="50000,200000,1000000", help="comma-separated pair counts")
    parser.add_argument("--compare-size", type=int, default=20000, help="pairs for the sklearn comparison (0: skip)")
    parser.add_argument("--compare-rounds", type=int, default=3, help="rounds of the comparison, each in a fresh process")
    parser.add_argument("--dim", type=int, default=512, help="feature width per modality")
    parser.add_argument("--k", type=int, default=256, help="k-means leaves")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rows = []
    for size in (int(s) for s in args.sizes.split(",") if s):
        result = _in_fresh_process(scaling_run, size, args.dim, args.k, args.seed)
        rows.append([result["pairs"], f"{result['seconds']:.1f}", f"{result['cpu_seconds']:.1f}",
                     f"{result['matrix_mb']:.0f}", f"{result['peak_growth_mb']:.0f}",
                     f"{result['growth_x_matrix']:.2f}", " / ".join(f"{a:.3f}" for a in result["ari"])])
        print(f"done {size}", flush=True)
    if rows:
        base_pairs, base_cpu = rows[0][0], float(rows[0][2])
        for row in rows:
            row.append(f"{float(row[2]) / base_cpu:.1f}x for {row[0] / base_pairs:.0f}x pairs")
        print(tabulate(rows, headers=["pairs", "wall s", "CPU s", "features MB", "peak RSS growth MB",
                                      "growth / features", "ARI levels 4/16/64", "CPU growth"]))
    if args.compare_size:
        runs = [_in_fresh_process(comparison_run, args.compare_size, args.dim, args.k, args.seed, bool(r % 2))
                for r in range(args.compare_rounds)]

        def column(key):
            return format_spread([run[key] for run in runs])

        print(tabulate([["CMHC (k-means + hierarchy)", column("ours_seconds"), column("ours_cpu"), column("ours_ari")],
                        ["sklearn AgglomerativeClustering (ward)", column("sklearn_seconds"), column("sklearn_cpu"),
                         column("sklearn_ari")]],
                       headers=[f"{args.compare_size} pairs, 64 clusters", "wall s", "CPU s", "ARI"]))
        wall = format_spread([run["sklearn_seconds"] / run["ours_seconds"] for run in runs], digits=0)
        cpu = format_spread([run["sklearn_cpu"] / run["ours_cpu"] for run in runs], digits=0)
        print(f"speed-up ({args.compare_rounds} rounds, the order alternating; min / median / max): "
              f"{wall}x wall, {cpu}x CPU time")

if __name__ == "__main__":
    main()
