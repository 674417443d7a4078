"""Benchmarks of the CLIP prompt trainers (issue 4), on a tiny CLIP and the CPU.

1. CoOp epoch time with the frozen-image-tower fast path (``CACHE_IMAGE_FEATURES``) against the
   ordinary path: same tiny CLIP, same data (a Caltech101-layout fixture of 224-pixel JPEGs, as
   real datasets store images larger than the network input), epochs of the two paths alternating
   over rounds (CPU and wall time, min / median / max), plus the one-off time to build the cache.
   (Whole runs, cache build included: ``bench_feature_cache.py``.)
2. Peak memory (process peak RSS, measured in a fresh subprocess per case) of CoOp and CoCoOp
   training steps with 1000 classes at batch 32, with the chunked text encoder; for comparison
   CoOp without chunking, and CoCoOp with glibc's mmap threshold fixed at 128 KiB
   (``MALLOC_MMAP_THRESHOLD_``): glibc otherwise keeps the freed activation buffers of the
   chunked passes in a fragmented heap, so peak RSS exceeds the live memory (fixing the
   threshold returns them to the OS, at the price of more page faults, i.e. CPU time).

    python bench/bench_trainers.py [--work-dir DIR] [--part speed|memory|all] [--threads N] [--out results.json]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402

from interleaved import format_spread, interleaved_rounds, round_ratios  # noqa: E402

from testing.tiny_clip import build_tiny_clip, ensure_tiny_clip  # noqa: E402
from tools.help_format import DefaultsHelpFormatter  # noqa: E402

SPEED_CLASSES, SPEED_SHOTS, SPEED_ROUNDS = 10, 16, 5
MEMORY_CLASSES, MEMORY_BATCH, MEMORY_STEPS = 1000, 32, 1


def coop_trainer(root: str, output_dir: str, checkpoint: str, cached: bool):
    """CoOp on the Caltech101 fixture with the tiny CoOp config (batch 32)."""
    from dassl.config import get_cfg_default
    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed

    import datasets  # noqa: F401  (registers the datasets)
    import trainers  # noqa: F401  (registers the trainers)
    from trainers.config import extend_cfg

    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.merge_from_file(os.path.join(REPO, "configs/trainers/CoOp/tiny_ep10.yaml"))
    cfg.merge_from_list([
        "DATASET.NAME", "Caltech101", "DATASET.ROOT", root, "DATASET.NUM_SHOTS", str(SPEED_SHOTS),
        "OUTPUT_DIR", output_dir, "SEED", "1", "TRAINER.NAME", "CoOp", "MODEL.BACKBONE.NAME", checkpoint,
        "DATALOADER.TRAIN_X.BATCH_SIZE", "32", "TRAIN.PRINT_FREQ", "100000", "TEST.NO_TEST", "True",
        "TRAINER.COOP.CACHE_IMAGE_FEATURES", str(cached), "TRAINER.COOP.CACHE_VIEWS", "1",
    ])
    cfg.freeze()
    set_random_seed(cfg.SEED)
    return build_trainer(cfg)


def next_epoch(trainer) -> Callable[[], None]:
    """A call that runs the trainer's next epoch."""
    def run() -> None:
        trainer.before_epoch()
        trainer.run_epoch()
        trainer.epoch += 1

    trainer.epoch = 0
    return run


def bench_speed(work_dir: str, rounds: int) -> dict:
    from datasets.fixtures import build_fixture

    root = os.path.join(work_dir, "data")
    if not os.path.isdir(os.path.join(root, "caltech-101")):
        build_fixture("Caltech101", root, num_classes=SPEED_CLASSES, images_per_class=40, image_size=224)
    checkpoint = ensure_tiny_clip(os.path.join(work_dir, "tiny_vit.pt"))
    results, cases = {}, {}
    for cached in (False, True):
        path = "cached" if cached else "uncached"
        trainer = coop_trainer(root, os.path.join(work_dir, f"coop_cached{cached}"), checkpoint, cached)
        start = time.perf_counter()
        trainer.before_train()
        results[path] = {"setup_s": time.perf_counter() - start, "batches": len(trainer.train_loader_x),
                         "train_images": len(trainer.dm.dataset.train_x)}
        cases[path] = next_epoch(trainer)
    timings = interleaved_rounds(cases, rounds)
    for path, clocks in timings.items():
        results[path].update({f"epoch_{clock}": values for clock, values in clocks.items()})
    results["speedup"] = round_ratios(timings, "uncached", "cached")
    return results


def memory_case(method: str, chunk: int) -> dict:
    """One run of MEMORY_STEPS training steps, 1000 classes, batch 32; peak RSS of this process."""
    from trainers.backbone.prompt_learner import PromptLearner
    from trainers.backbone.prompt_trainer import PromptCLIP
    from trainers.cocoop import CoCoOpCLIP, ConditionalPromptLearner

    torch.manual_seed(0)
    clip_model = build_tiny_clip("vit", seed=0)
    classnames = [f"class number {index}" for index in range(MEMORY_CLASSES)]
    if method == "CoOp":
        model = PromptCLIP(clip_model, PromptLearner(clip_model, classnames, n_ctx=16), chunk)
    else:
        model = CoCoOpCLIP(clip_model, ConditionalPromptLearner(clip_model, classnames, 4, "a photo of a", False), chunk)
    for name, param in model.named_parameters():
        param.requires_grad_("prompt_learner" in name)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.002)
    images = torch.randn(MEMORY_BATCH, 3, 32, 32)
    labels = torch.randint(0, MEMORY_CLASSES, (MEMORY_BATCH,))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(MEMORY_STEPS):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    step_s = (time.perf_counter() - start) / MEMORY_STEPS
    step_cpu_s = (time.process_time() - cpu_start) / MEMORY_STEPS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"method": method, "text_chunk": chunk, "peak_rss_mib": peak,
            "rss_before_steps_mib": rss_before, "step_s": step_s, "step_cpu_s": step_cpu_s}


def bench_memory() -> list:
    low_heap = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    cases = [("CoOp", 256, {}), ("CoOp", 0, {}), ("CoCoOp", 256, {}), ("CoCoOp", 256, low_heap)]
    results = []
    for method, chunk, env in cases:
        command = [sys.executable, os.path.abspath(__file__), "--memory-case", method, str(chunk),
                   "--threads", str(torch.get_num_threads())]
        output = subprocess.run(command, check=True, capture_output=True, text=True, env={**os.environ, **env}).stdout
        result = json.loads(output.strip().splitlines()[-1])
        result["malloc"] = " ".join(f"{k}={v}" for k, v in env.items()) or "glibc default"
        results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--work-dir", default="", help="fixture data and checkpoints (default: a temp dir)")
    parser.add_argument("--part", choices=("speed", "memory", "all"), default="all")
    parser.add_argument("--out", default="", help="write the results as JSON here")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: steady timings on a shared machine)")
    parser.add_argument("--rounds", type=int, default=SPEED_ROUNDS, help="interleaved epochs of each CoOp path")
    parser.add_argument("--memory-case", nargs=2, metavar=("METHOD", "CHUNK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_case:
        method, chunk = args.memory_case
        print(json.dumps(memory_case(method, int(chunk))))
        return
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_trainers_")
    results = {"threads": torch.get_num_threads()}
    if args.part in ("speed", "all"):
        speed = results["speed"] = bench_speed(work_dir, args.rounds)
        print(f"CoOp epochs, tiny CLIP (64 wide, 2 layers, 32 px), {SPEED_CLASSES} classes x {SPEED_SHOTS} shots of "
              f"224-pixel JPEGs, batch 32, {torch.get_num_threads()} thread(s); the paths alternate over "
              f"{args.rounds} rounds of one epoch each; min / median / max")
        print(tabulate([[path, format_spread(speed[path]["epoch_cpu_s"], digits=3),
                         format_spread(speed[path]["epoch_wall_s"], digits=3), f"{speed[path]['setup_s']:.2f}",
                         speed[path]["batches"]] for path in ("uncached", "cached")],
                       headers=["CoOp path", "epoch CPU (s)", "epoch wall (s)", "before_train (s)", "batches/epoch"]))
        print(f"cached-feature speed-up per epoch: CPU {format_spread(speed['speedup']['cpu_s'], digits=1)}x, "
              f"wall {format_spread(speed['speedup']['wall_s'], digits=1)}x")
    if args.part in ("memory", "all"):
        memory = results["memory"] = bench_memory()
        print(tabulate([[m["method"], m["text_chunk"] or "off", m["malloc"], f"{m['peak_rss_mib']:.0f}",
                         f"{m['step_s']:.2f}", f"{m['step_cpu_s']:.2f}"] for m in memory],
                       headers=["method (1000 classes, batch 32)", "TEXT_CHUNK", "malloc", "peak RSS (MiB)",
                                "step (s)", "step CPU (s)"]))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
