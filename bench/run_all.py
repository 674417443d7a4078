"""Every benchmark of the toolbox in one run (``make bench``), so the issue numbers can be re-measured.

Each benchmark is its own script (run one alone for its options); this runs them in turn with
settings sized for a 2-core machine and prints their tables. ``--full`` uses the issues' full sizes
(1M-pair clustering, 1,000-class memory cases); ``--toy`` adds the toy-world accuracy tables, from the
demo's world, clusters and meta checkpoint (run ``make demo`` first): the demo's base-to-new runs (read from
``output/demo``), ``bench_toy_gram.py`` (CoOp vs CoOp_GRAM and its ablations at 16 and 1 shots),
``bench_toy_meta_select.py`` (the choice of each method's meta settings on held-out meta-tasks),
``bench_toy_recipe_select.py`` (the recipes' learning rates checked on validation splits),
``bench_toy_tta_select.py`` (the test-time meta setting, on shifted styles the TTA table leaves out),
``bench_toy_probe.py`` (a linear probe's ceiling per toy class set), ``bench_toy_protocols.py`` (few-shot,
base-to-new, DG, cross-dataset, seeds 1-3, paired intervals; the methods of ``--toy-methods``, all four by
default: about an hour on 2 cores) and ``bench_toy_ablation.py`` (flat k-means vs CMHC, tasks, prototypes).
"""
import argparse
import os
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)

QUICK = {
    "bench_engine.py": [],
    "bench_trainers.py": [],
    "bench_feature_cache.py": ["--setup", "tiny"],
    "bench_pretrain_load.py": ["--rounds", "1"],
    "bench_gram.py": ["--rounds", "6"],
    "bench_clustering.py": ["--sizes", "50000,200000", "--compare-size", "5000"],
    "bench_dataloading.py": ["--n", "256"],
    "bench_results.py": [],
    "bench_startup.py": ["--rounds", "3"],
    "bench_open_clip.py": ["--steps", "2"],
}
FULL = dict(QUICK, **{"bench_gram.py": [], "bench_clustering.py": [], "bench_dataloading.py": [],
                      "bench_feature_cache.py": [], "bench_pretrain_load.py": []})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the issues' full sizes")
    parser.add_argument("--toy", action="store_true", help="also print the demo's toy-world table")
    parser.add_argument("--toy-methods", nargs="+", default=["CoOp", "CoCoOp", "VPT", "MaPLe"],
                        help="with --toy: the prompt methods of bench_toy_meta_select.py and bench_toy_protocols.py")
    parser.add_argument("--only", nargs="*", default=None, help="run only these scripts")
    args = parser.parse_args()
    plan = FULL if args.full else QUICK
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "third_party")]))
    failed = []
    for script, options in plan.items():
        if args.only and script not in args.only:
            continue
        print(f"\n##### {script} {' '.join(options)}", flush=True)
        started = time.time()
        result = subprocess.run([sys.executable, os.path.join(BENCH, script)] + options, cwd=REPO, env=env)
        print(f"##### {script}: {time.time() - started:.0f} s, exit {result.returncode}", flush=True)
        if result.returncode:
            failed.append(script)
    if args.toy:
        print("\n##### toy world base-to-new (output/demo)", flush=True)
        subprocess.run([sys.executable, "parse_test_res.py", "output/demo", "--protocol", "base2new"], cwd=REPO, env=env)
        toy = [("bench_toy_gram.py", [])]
        toy += [("bench_toy_meta_select.py", ["--method", method]) for method in args.toy_methods]
        toy += [("bench_toy_recipe_select.py", ["--methods"] + args.toy_methods), ("bench_toy_tta_select.py", []),
                ("bench_toy_probe.py", []),
                ("bench_toy_protocols.py", ["--methods"] + args.toy_methods), ("bench_toy_ablation.py", [])]
        for script, options in toy:
            print(f"\n##### {script} {' '.join(options)}", flush=True)
            if subprocess.run([sys.executable, os.path.join(BENCH, script)] + options, cwd=REPO, env=env).returncode:
                failed.append(script)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
