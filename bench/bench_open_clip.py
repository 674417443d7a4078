"""open_clip backbones against OpenAI's CLIP at ViT-B/16 widths: parameters, memory and training-step time.

    python bench/bench_open_clip.py [--method CoOp] [--batch 4] [--classes 10] [--steps 3] [--threads 1] [--rounds 3]

Both models are randomly initialised (no download): OpenAI's ViT-B/16 architecture built by
``clip.model.build_model`` (QuickGELU), and ``open_clip:ViT-B-16`` (LAION's ViT-B-16 architecture, GELU)
converted by ``trainers.backbone.open_clip_backbone``; both end as the same ``clip.model.CLIP`` module
and run through the same prompt method (fp32 on the CPU, 224-pixel images). Each case runs in its own
subprocess, once per round for ``--rounds`` rounds, in an order rotated from round to round (figures are
min / median / max over rounds, with the open_clip / OpenAI step-time ratio taken within each round):
the model's resident memory (RSS after building it, above the RSS after imports), the peak RSS of the training steps above that (the kernel's VmHWM, reset before the steps), model-building time,
and the CPU time (and wall time) of one training step (forward, backward, SGD step on the prompt
parameters), the best of ``--steps`` after a warm-up step.
"""
import argparse
import json
import os
import gc
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "third_party")]
from interleaved import format_spread, rotated  # noqa: E402  (bench/ is the script's folder, first on sys.path)

CASES = ("openai", "open_clip")
VIT_B16 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
               context_length=77, vocab_size=49408, transformer_width=512, transformer_layers=12)


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> None:
    """Make the kernel's peak-RSS counter (VmHWM) restart from the current RSS (Linux)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def build_backbone(case: str):
    from clip.model import build_model

    from trainers.backbone.clip_loader import load_clip
    from testing.tiny_clip import build_tiny_clip

    if case == "openai":
        return build_model(build_tiny_clip(arch="vit", **VIT_B16).state_dict())
    return load_clip("open_clip:ViT-B-16")


def run_case(case: str, method: str, batch: int, classes: int, steps: int) -> dict:
    import torch

    import trainers  # noqa: F401  (registers the trainers)
    from dassl.engine import TRAINER_REGISTRY
    from tools.cli import default_cfg

    baseline = rss_mb()
    start = time.perf_counter()
    clip_model = build_backbone(case).float()
    build_s = time.perf_counter() - start
    torch.manual_seed(0)
    trainer_class = TRAINER_REGISTRY.get(method)
    model = trainer_class.build_prompt_model(default_cfg(), clip_model, [f"class {i}" for i in range(classes)])
    params = [p for n, p in model.named_parameters() if trainer_class.prompt_module_name in n]
    optimizer = torch.optim.SGD(params, lr=0.002)
    images = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    gc.collect()
    model_mb = rss_mb() - baseline
    reset_peak_rss()
    before_steps = rss_mb()
    labels = torch.arange(batch) % classes
    cpu_times, wall_times = [], []
    for _ in range(steps + 1):
        cpu, wall = time.process_time(), time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        cpu_times.append(time.process_time() - cpu)
        wall_times.append(time.perf_counter() - wall)
    activation = type(clip_model.transformer.resblocks[0].mlp.gelu).__name__
    return {
        "case": case, "activation": activation,
        "params_M": sum(p.numel() for p in clip_model.parameters()) / 1e6,
        "build_s": build_s,
        "step_cpu_s": min(cpu_times[1:]), "step_wall_s": min(wall_times[1:]),
        "model_rss_MB": model_mb,
        "step_peak_rss_above_model_MB": peak_rss_mb() - before_steps,
        "loss_finite": bool(torch.isfinite(loss)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--method", default="CoOp", help="prompt method (a registered trainer)")
    parser.add_argument("--batch", type=int, default=4, help="images per training step")
    parser.add_argument("--classes", type=int, default=10, help="class prompts per step")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per case")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each case once per round)")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # one case, in this process
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    args = parser.parse_args()
    if args.case:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(run_case(args.case, args.method, args.batch, args.classes, args.steps)))
        return
    runs = {case: [] for case in CASES}
    for round_index in range(args.rounds):
        for case in rotated(CASES, round_index):
            command = [sys.executable, os.path.abspath(__file__), "--case", case, "--method", args.method,
                       "--batch", str(args.batch), "--classes", str(args.classes), "--steps", str(args.steps),
                       "--threads", str(args.threads)]
            output = subprocess.run(command, check=True, capture_output=True, text=True,
                                    env=dict(os.environ, OMP_NUM_THREADS=str(args.threads))).stdout
            runs[case].append(json.loads(output.strip().splitlines()[-1]))
    from tabulate import tabulate

    def column(case: str, key: str, digits: int) -> str:
        return format_spread([run[key] for run in runs[case]], digits=digits)

    print(f"{args.method}, batch {args.batch}, {args.classes} classes, fp32 CPU, {args.threads} thread(s); "
          f"{args.rounds} interleaved rounds, min / median / max")
    print(tabulate([[case, runs[case][0]["activation"], f"{runs[case][0]['params_M']:.1f}",
                     column(case, "build_s", 1), column(case, "step_cpu_s", 2), column(case, "step_wall_s", 2),
                     column(case, "model_rss_MB", 0), column(case, "step_peak_rss_above_model_MB", 0)]
                    for case in CASES],
                   headers=["backbone", "MLP act.", "params (M)", "build (s)", "step CPU (s)", "step wall (s)",
                            "model RSS (MB)", "step peak RSS above model (MB)"]))
    for clock in ("step_cpu_s", "step_wall_s"):
        ratios = [theirs[clock] / ours[clock] for theirs, ours in zip(runs["open_clip"], runs["openai"])]
        print(f"open_clip / OpenAI {clock}: {format_spread(ratios)}x")
    rows = [run for case in CASES for run in runs[case]]
    if args.out:
        from fileio.atomic import write_text_atomically

        write_text_atomically(args.out, json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
