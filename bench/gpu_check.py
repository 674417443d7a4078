"""One-command check of the GPU path: ``python bench/gpu_check.py [--out output/gpu_check]``.

With CUDA present it builds a random-weight CLIP with ViT-B/16's exact architecture (OpenAI's state-dict
format, loaded through the normal checkpoint path) and then:
1. for each trainer with its shipped ViT-B/16 config and ``PREC`` (``tools.protocols`` recipes; the GRAM
   variants from a fresh meta checkpoint of the baseline's prompts): 20 training steps on a synthetic
   1000-class ImageNet (``datasets.fixtures``, two shots per class), asserting finite losses and recording
   the step time and the peak GPU memory; TPT and TPT_GRAM tune and predict 20 test images instead, over
   ImageNet's 1000 classes (the latency per sample);
2. FAISS-GPU k-means (256 centroids) on 1,000,000 x 512 joint features (the clustering stage's code);
3. one GRAM outer step of CoOp prompts at ViT-B/16 (a meta-batch of 4 tasks of 32 + 32 pairs), first
   order (5 inner steps, ``configs/gram/coop.yaml``) and second order (1 inner step, the alternative config).
It writes ``gpu_check.json`` and ``gpu_check.md`` (a table) under ``--out`` and exits 1 if any check failed.
Without CUDA it says so in one line and exits 0 (``--device cpu`` runs the same checks on the CPU, e.g.
with ``--backbone`` a small checkpoint and ``--classes 10``). It is never a test dependency; the tests
import only its CPU-independent pieces (the report writing, one trainer check on a tiny CLIP).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import torch  # noqa: E402

from fileio.atomic import write_text_atomically  # noqa: E402

STEPS = 20
TRAINERS = ("CoOp", "CoCoOp", "KgCoOp", "VPT", "MaPLe", "ProMetaR", "TPT")  # each also with its _GRAM variant


@dataclass
class CheckResult:
    """One row of the report."""

    check: str
    config: str = ""
    prec: str = ""  # PREC asked for / precision used
    steps: int = 0
    ok: bool = False
    seconds_per_step: Optional[float] = None
    peak_memory_mib: Optional[float] = None
    note: str = ""
    losses: List[float] = field(default_factory=list)


class PeakMemory:
    """Peak GPU memory (MiB) of the code inside the ``with`` block; None on the CPU."""

    def __init__(self, device: torch.device):
        self.device = device
        self.mib: Optional[float] = None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mib = torch.cuda.max_memory_allocated(self.device) / 2 ** 20


def format_table(results: List[CheckResult]) -> str:
    """The report as a Markdown table."""
    def number(value: Optional[float], digits: int) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    lines = ["| check | config | PREC | steps | finite | s / step | peak MiB | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.check} | {r.config} | {r.prec} | {r.steps} | {'yes' if r.ok else 'NO'} | "
                     f"{number(r.seconds_per_step, 3)} | {number(r.peak_memory_mib, 0)} | {r.note} |")
    return "\n".join(lines) + "\n"


def write_report(results: List[CheckResult], out_dir: str, environment: dict) -> List[str]:
    """``gpu_check.json`` (environment + every result) and ``gpu_check.md`` (the table), written atomically."""
    payload = {"environment": environment, "results": [asdict(r) for r in results]}
    json_path = write_text_atomically(os.path.join(out_dir, "gpu_check.json"), json.dumps(payload, indent=2) + "\n")
    table = f"GPU check on {environment.get('device', '?')} (torch {environment.get('torch', '?')})\n\n"
    md_path = write_text_atomically(os.path.join(out_dir, "gpu_check.md"), table + format_table(results))
    return [json_path, md_path]


def timed(device: torch.device, step: Callable[[], float], steps: int) -> tuple:
    """``(losses, seconds per step, peak MiB)`` of ``steps`` calls of ``step`` (the first is a warm-up)."""
    losses = [step()]
    with PeakMemory(device) as peak:
        start = time.perf_counter()
        for _ in range(steps - 1):
            losses.append(step())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - start
    return losses, elapsed / max(steps - 1, 1), peak.mib


def trainer_cfg(trainer: str, config_file: str, root: str, backbone: str, output_dir: str, opts: list, device: str):
    """The config ``train.py`` builds for these arguments (seed 1) on the synthetic ImageNet."""
    import datasets  # noqa: F401  (registers the datasets)
    import trainers  # noqa: F401  (registers the trainers)
    from tools.cli import default_cfg

    cfg = default_cfg()
    cfg.merge_from_file(os.path.join(REPO, config_file))
    cfg.merge_from_list(["DATASET.NAME", "ImageNet", "DATASET.ROOT", root, "DATASET.NUM_SHOTS", 2,
                         "OUTPUT_DIR", output_dir, "SEED", 1, "TRAINER.NAME", trainer,
                         "MODEL.BACKBONE.NAME", backbone, "USE_CUDA", device == "cuda",
                         "TRAIN.CHECKPOINT_FREQ", 0, *opts])
    cfg.freeze()
    return cfg


def shipped_config(trainer: str) -> str:
    """The trainer's ViT-B/16 config file (few-shot recipe; TPT: its test-time one)."""
    from tools.protocols import recipe_for, trainer_config_path

    recipe = recipe_for(trainer)
    protocol = "tta" if not recipe.trains else "fewshot"
    return trainer_config_path(recipe, recipe.default_config(protocol), REPO)


def check_trainer(trainer_name: str, config_file: str, root: str, backbone: str, output_dir: str,
                  steps: int = STEPS, opts=(), device: str = "cuda") -> CheckResult:
    """Build a trainer as ``train.py`` does and take ``steps`` training steps (TPT: tune and predict
    ``steps`` test images); finite losses, time per step and peak GPU memory."""
    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed

    cfg = trainer_cfg(trainer_name, config_file, root, backbone, output_dir, list(opts), device)
    method_cfg = cfg.TRAINER[trainer_module(trainer_name).method_key]
    set_random_seed(cfg.SEED)
    trainer = build_trainer(cfg)
    result = CheckResult(trainer_name, os.path.basename(config_file)[:-5], f"{method_cfg.PREC}/{trainer.precision}")
    if trainer_name.startswith("TPT"):
        tuner, batches = trainer.build_tuner(), endless(trainer.test_loader)

        def step() -> float:
            views, _ = trainer.parse_batch_test(next(batches))
            return float(tuner.predict(views[0]).float().logsumexp(-1))
        result.note = f"per test image, {cfg.TRAINER.TPT.N_VIEWS} views, {trainer.num_classes} classes"
    else:
        batches = endless(trainer.train_loader_x)
        trainer.num_batches = len(trainer.train_loader_x)
        trainer.batch_idx = 0
        trainer.set_model_mode("train")

        def step() -> float:
            return trainer.forward_backward(next(batches))["loss"]
        result.note = f"batch {cfg.DATALOADER.TRAIN_X.BATCH_SIZE}, {trainer.num_classes} classes"
    result.losses, result.seconds_per_step, result.peak_memory_mib = timed(trainer.device, step, steps)
    result.steps = len(result.losses)
    result.ok = all(torch.isfinite(torch.tensor(result.losses)).tolist())
    return result


def endless(loader):
    """The loader's batches, over and over (a small synthetic set may hold fewer batches than the steps)."""
    while True:
        yield from loader


def trainer_module(trainer_name: str):
    from dassl.engine import TRAINER_REGISTRY

    return TRAINER_REGISTRY.get(trainer_name)


def check_trainer_and_gram(trainer_name: str, root: str, backbone: str, out_dir: str, steps: int,
                           device: str) -> List[CheckResult]:
    """The baseline, then its _GRAM variant from a fresh meta checkpoint of the baseline's prompts."""
    from dassl.utils import set_random_seed

    from tools.cli import default_cfg
    from trainers.backbone.clip_loader import checkpoint_fingerprint, load_clip
    from trainers.gram.meta_checkpoint import fresh_meta_checkpoint, save_meta_checkpoint

    config_file = shipped_config(trainer_name)
    results = [guarded(trainer_name, lambda: check_trainer(trainer_name, config_file, root, backbone,
                                                           os.path.join(out_dir, trainer_name), steps, (), device))]
    cfg = default_cfg()
    cfg.merge_from_file(os.path.join(REPO, config_file))
    set_random_seed(1)
    model = trainer_module(trainer_name).build_prompt_model(cfg, load_clip(backbone).float(), ["object"])
    prompts = {n: p for n, p in model.named_parameters() if p.requires_grad}
    meta = os.path.join(out_dir, f"{trainer_name}_meta.pth")
    save_meta_checkpoint(fresh_meta_checkpoint(trainer_name, prompts, checkpoint_fingerprint(backbone), backbone), meta)
    opts = ["TRAINER.GRAM.META_CKPT", meta] + (["TRAINER.GRAM.REGULATOR", "identity"] if trainer_name == "TPT" else [])
    gram = f"{trainer_name}_GRAM"
    results.append(guarded(gram, lambda: check_trainer(gram, config_file, root, backbone, os.path.join(out_dir, gram),
                                                       steps, opts, device)))
    return results


def guarded(name: str, run: Callable[[], CheckResult]) -> CheckResult:
    """``run()``, or a failed row carrying the error's first line (the other checks still run)."""
    try:
        return run()
    except Exception as error:  # a failed check is a row of the report, not the end of the run
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return CheckResult(name, note=f"{type(error).__name__}: {first_line}"[:200])


def check_kmeans(device: str, rows: int = 1_000_000, dim: int = 512, k: int = 256) -> CheckResult:
    """The clustering stage's k-means (FAISS, GPU when this FAISS build has one) on random joint features."""
    import numpy as np

    from clustering.features import PairedFeatures
    from clustering.kmeans import fit_joint_kmeans, kmeans_gpus

    use_gpu = kmeans_gpus(device == "cuda")
    rng = np.random.default_rng(0)
    image = rng.standard_normal((rows, dim), dtype=np.float32)
    text = rng.standard_normal((rows, dim), dtype=np.float32)
    start = time.perf_counter()
    result = fit_joint_kmeans(PairedFeatures(image, text), k, niter=20, use_gpu=use_gpu)
    elapsed = time.perf_counter() - start
    ok = bool(np.isfinite(result.centroids).all()) and len(np.unique(result.assignment)) > 1
    note = f"{rows:,} x {dim}, k={k}, " + (f"FAISS on {use_gpu} GPU(s)" if use_gpu else "FAISS CPU (this build sees no GPU)")
    return CheckResult("k-means", steps=1, ok=ok, seconds_per_step=elapsed, note=note)


def check_gram_outer_step(backbone: str, device: str, first_order: bool) -> CheckResult:
    """One GRAM outer step of CoOp prompts (ViT-B/16 text tower, cached 512-d image features)."""
    from tools.cli import default_cfg
    from trainers.backbone.clip_loader import load_clip
    from trainers.gram.meta_learning import MetaLearner, MetaLearningSettings, MetaTask
    from trainers.gram.meta_trainer import build_method_model
    from trainers.gram.regulator import build_regulator
    from trainers.gram.task_loss import PairBatch, make_pair_loss

    config = "coop.yaml" if first_order else "coop_1step_2nd_order_mixup.yaml"
    cfg = default_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", "gram", config))
    gram = cfg.TRAINER.GRAM
    torch.manual_seed(0)
    model = build_method_model(cfg, "CoOp", load_clip(backbone).float(), device).to(device)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    regulator = build_regulator(gram.REGULATOR, {n: tuple(p.shape) for n, p in params.items()}, rank=gram.RANK,
                                gate_hidden=gram.GATE_HIDDEN).to(device)
    settings = MetaLearningSettings(inner_lr=gram.INNER_LR, inner_steps=gram.INNER_STEPS, first_order=gram.FIRST_ORDER,
                                    consistency_weight=gram.CONSISTENCY_WEIGHT)
    learner = MetaLearner(params, regulator, make_pair_loss(model), settings)
    optimizer = torch.optim.Adam(list(params.values()) + list(regulator.parameters()), lr=cfg.OPTIM.LR)
    dim = model.text_encoder.text_projection.shape[1]

    def pairs(size: int, offset: int) -> PairBatch:
        return PairBatch(torch.randn(size, dim, device=device),
                         [f"a photo of thing number {offset + i} on a table" for i in range(size)])

    tasks = [MetaTask(pairs(gram.SUPPORT_SIZE, 100 * i), pairs(gram.QUERY_SIZE, 100 * i + 50), 0.3)
             for i in range(gram.META_BATCH)]
    losses, seconds, peak = timed(torch.device(device), lambda: learner.step(tasks, optimizer)["query_loss"], 3)
    order = "first order" if first_order else "second order"
    return CheckResult(f"GRAM outer step ({order})", config[:-5], "fp32", len(losses),
                       all(torch.isfinite(torch.tensor(losses)).tolist()), seconds, peak,
                       f"{gram.META_BATCH} tasks of {gram.SUPPORT_SIZE}+{gram.QUERY_SIZE}, {gram.INNER_STEPS} inner step(s)",
                       losses)


def prepare(out_dir: str, classes: int, backbone: str) -> tuple:
    """``(dataset root, CLIP checkpoint)``: the synthetic ImageNet (64-px images, resized by the transforms)
    and, unless given, a random-weight CLIP ViT-B/16 in OpenAI's state-dict format."""
    from datasets.fixtures import build_fixture
    from testing.tiny_clip import VIT_B16, ensure_tiny_clip

    root = os.path.join(out_dir, "data")
    if not os.path.isdir(os.path.join(root, "imagenet")):
        build_fixture("ImageNet", root, num_classes=classes, images_per_class=4, image_size=64)
    checkpoint = backbone or ensure_tiny_clip(os.path.join(out_dir, "vit_b16_random.pt"), arch="vit", seed=0, **VIT_B16)
    return root, checkpoint


def environment(device: str) -> dict:
    info = {"torch": torch.__version__, "device": "cpu"}
    if device == "cuda":
        info.update(device=torch.cuda.get_device_name(0), cuda=torch.version.cuda,
                    gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2 ** 30, 1))
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=os.path.join(REPO, "output", "gpu_check"))
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--classes", type=int, default=1000, help="classes of the synthetic ImageNet")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--backbone", default="", help="CLIP checkpoint (default: random-weight ViT-B/16)")
    parser.add_argument("--trainers", nargs="+", default=list(TRAINERS))
    parser.add_argument("--skip-kmeans", action="store_true")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible (torch.cuda.is_available() is False); nothing checked")
        return 0
    start = time.perf_counter()
    root, backbone = prepare(args.out, args.classes, args.backbone)
    results: List[CheckResult] = []
    for name in args.trainers:
        results += check_trainer_and_gram(name, root, backbone, args.out, args.steps, args.device)
        print("\n".join(format_table(results[-2:]).splitlines()[-2:]), flush=True)
    if not args.skip_kmeans:
        results.append(guarded("k-means", lambda: check_kmeans(args.device)))
    for first_order in (True, False):
        results.append(guarded("GRAM outer step", lambda: check_gram_outer_step(backbone, args.device, first_order)))
    info = environment(args.device)
    info["total_seconds"] = round(time.perf_counter() - start, 1)
    for path in write_report(results, args.out, info):
        print(f"Wrote {path}")
    print(format_table(results))
    print(f"Total: {info['total_seconds']} s")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
