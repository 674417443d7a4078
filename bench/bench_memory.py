"""Peak memory of one training step per trainer at CLIP ViT-B/16's widths, on the CPU (issue 13).

Each case runs in a fresh subprocess (peak RSS is per process): the trainer is built as ``train.py`` builds
it, with its shipped ViT-B/16 config (batch size, N_CTX, PREC, which falls back to fp32 on the CPU), on a
synthetic ImageNet of ``--classes`` classes (``datasets.fixtures``; 64-px images resized to 224 by the
config's transforms), and takes one training step. The CLIP has ViT-B/16's widths and heads (768 / 512,
12 / 8 heads), 224-px input and ``--layers`` layers per tower (default 2 of 12, to fit the shared CPU);
prompt depths are capped at that depth. Reported: the process's RSS after building (weights, data
pipeline) and its peak RSS after the step, in MiB.

    python bench/bench_memory.py [--classes 500] [--layers 2] [--trainers MaPLe CoOp ...] [--out results.json]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (REPO, os.path.join(REPO, "bench")):
    if path not in sys.path:
        sys.path.insert(0, path)

from tabulate import tabulate  # noqa: E402

TRAINERS = ("CoOp", "CoCoOp", "KgCoOp", "VPT", "MaPLe", "ProMetaR")
DEPTH_KEYS = ("TRAINER.MAPLE.PROMPT_DEPTH", "TRAINER.VPT.PROMPT_DEPTH_VISION", "TRAINER.PROMETAR.PROMPT_DEPTH_VISION",
              "TRAINER.PROMETAR.PROMPT_DEPTH_TEXT")


def current_rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def memory_case(trainer_name: str, root: str, backbone: str, layers: int, output_dir: str) -> dict:
    """One training step of ``trainer_name`` in this process; RSS after building and peak RSS after the step."""
    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed

    from gpu_check import shipped_config, trainer_cfg

    config_file = shipped_config(trainer_name)
    depth_opts = [item for key in DEPTH_KEYS for item in (key, str(layers))]
    cfg = trainer_cfg(trainer_name, config_file, root, backbone, output_dir, depth_opts, "cpu")
    set_random_seed(1)
    trainer = build_trainer(cfg)
    batch = next(iter(trainer.train_loader_x))
    trainer.batch_idx, trainer.num_batches = 0, 2
    built = current_rss_mib()
    start, cpu_start = time.perf_counter(), time.process_time()
    loss = trainer.forward_backward(batch)["loss"]
    return {"trainer": trainer_name, "config": os.path.basename(config_file)[:-5], "classes": trainer.num_classes,
            "batch": cfg.DATALOADER.TRAIN_X.BATCH_SIZE, "layers": layers, "loss": loss,
            "rss_after_build_mib": round(built), "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "step_s": round(time.perf_counter() - start, 1), "step_cpu_s": round(time.process_time() - cpu_start, 1)}


def prepare(work_dir: str, classes: int, layers: int) -> tuple:
    from datasets.fixtures import build_fixture
    from testing.tiny_clip import VIT_B16, ensure_tiny_clip

    root = os.path.join(work_dir, f"imagenet{classes}")
    if not os.path.isdir(os.path.join(root, "imagenet")):
        build_fixture("ImageNet", root, num_classes=classes, images_per_class=4, image_size=64)
    sizes = dict(VIT_B16, vision_layers=layers, transformer_layers=layers)
    backbone = ensure_tiny_clip(os.path.join(work_dir, f"vit_b16_widths_{layers}layers.pt"), arch="vit", **sizes)
    return root, backbone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[500])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--trainers", nargs="+", default=list(TRAINERS))
    parser.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "gram_bench_memory"))
    parser.add_argument("--out")
    parser.add_argument("--case", nargs=4, metavar=("TRAINER", "ROOT", "BACKBONE", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(memory_case(args.case[0], args.case[1], args.case[2], args.layers, args.case[3])))
        return
    rows = []
    for classes in args.classes:
        root, backbone = prepare(args.work_dir, classes, args.layers)
        for name in args.trainers:
            command = [sys.executable, os.path.abspath(__file__), "--layers", str(args.layers), "--case", name, root,
                       backbone, os.path.join(args.work_dir, "runs", f"{name}_{classes}")]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(output.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(tabulate(rows, headers="keys", tablefmt="github"))
    if args.out:
        from fileio.atomic import write_text_atomically

        write_text_atomically(args.out, json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
