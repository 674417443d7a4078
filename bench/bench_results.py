"""Benchmark: parse 1,000 run folders into the five protocol tables (target: <= 5 s).

Writes 1,000 synthetic run folders (Dassl logs of 400 training lines each, every other run also with a
results.json) laid out as the protocol scripts lay them out: few-shot (4 trainers x 11 datasets x 5 shots x 3
seeds), base-to-new (4 trainers x 11 datasets x 3 seeds x train/test), cross-dataset (2 trainers x 10 targets x
3 seeds) and DG (2 trainers x 4 targets x 2 seeds). Then times scanning them and building and rendering
every table (Markdown and CSV). Prints one JSON line.

    PYTHONPATH=third_party:. python bench/bench_results.py
"""
import json
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools import names, tables  # noqa: E402
from tools.synthetic_runs import write_run  # noqa: E402

TARGET_SECONDS = 5.0


def make_runs(root: str) -> int:
    rng = random.Random(0)
    folders = []
    for trainer in ("CoOp", "CoCoOp", "MaPLe", "CoOp_GRAM"):
        for dataset in names.FEWSHOT_DATASETS:
            for shots in names.FEWSHOT_SHOTS:
                folders += [(f"{dataset}/{trainer}/cfg_{shots}shots/seed{s}", True) for s in (1, 2, 3)]
            for stage in ("train_base", "test_new"):
                folders += [(f"base2new/{stage}/{dataset}/shots_16/{trainer}/cfg/seed{s}", stage == "train_base")
                            for s in (1, 2, 3)]
    for trainer in ("CoOp", "CoCoOp"):
        for dataset in names.CROSS_DATASET_TARGETS:
            folders += [(f"evaluation/{trainer}/cfg_16shots/{dataset}/seed{s}", False) for s in (1, 2, 3)]
        for dataset in names.DG_TARGETS:
            folders += [(f"evaluation/{trainer}/cfg_16shots/{dataset}/seed{s}", False) for s in (1, 2)]
    for index, (relative, trained) in enumerate(folders):
        write_run(os.path.join(root, relative), rng.uniform(40, 95), with_json=index % 2 == 0, trained=trained,
                  epochs=400 if trained else 0)
    return len(folders)


def main() -> int:
    with tempfile.TemporaryDirectory() as root:
        count = make_runs(root)
        start = time.perf_counter()
        runs = tables.scan(root)
        built = [tables.build_table(protocol, runs) for protocol in tables.TABLE_BUILDERS]
        rendered = sum(len(t.to_markdown()) + len(t.to_csv()) for t in built)
        seconds = time.perf_counter() - start
    result = {"bench": "results_parse_tables", "run_folders": count, "runs_parsed": len(runs),
              "tables": len(built), "rendered_chars": rendered, "seconds": round(seconds, 3),
              "target_seconds": TARGET_SECONDS, "pass": seconds <= TARGET_SECONDS and len(runs) == count}
    print(json.dumps(result))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
