"""Per-sample latency of test-time tuning (issue 7): zero-shot vs TPT vs TPT_GRAM, tiny CLIP, CPU.

    python bench/bench_tpt.py [--samples 20] [--views 64]

Runs on a toy-world test set (the tiny world is generated under a temp dir when missing) with a
tiny CLIP. TPT_GRAM uses a structure-induced regulator over the world's cluster prototypes; its
latency does not depend on the regulator's trained values, so an untrained one is used here.
"""
import argparse
import itertools
import os
import sys
import tempfile
from typing import Callable

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "third_party")]

from tabulate import tabulate  # noqa: E402

from interleaved import format_spread, interleaved_rounds, round_ratios  # noqa: E402

import trainers  # noqa: E402,F401
from datasets.toy_world import build_world  # noqa: E402
from tools.cli import default_cfg  # noqa: E402
from tools.help_format import DefaultsHelpFormatter  # noqa: E402
from trainers.backbone.clip_loader import checkpoint_fingerprint  # noqa: E402
from testing.tiny_clip import ensure_tiny_clip  # noqa: E402
from trainers.gram.meta_checkpoint import MetaCheckpoint, save_meta_checkpoint  # noqa: E402
from trainers.gram.regulator import build_regulator  # noqa: E402
from trainers.gram.structure_tta import StructureEncoder, StructureInducedRegulator, test_time_payload  # noqa: E402


def build(trainer: str, root: str, clip_path: str, views: int, opts=()):
    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed

    cfg = default_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs/trainers/TPT/tiny.yaml"))
    cfg.merge_from_file(os.path.join(REPO, "configs/datasets/toy_shapes_sketch.yaml"))
    cfg.merge_from_list(["DATASET.ROOT", root, "MODEL.BACKBONE.NAME", clip_path, "TRAINER.NAME", trainer,
                         "TRAINER.TPT.N_VIEWS", views, "OUTPUT_DIR", tempfile.mkdtemp(), "SEED", 1, *opts])
    cfg.freeze()
    set_random_seed(1)
    return build_trainer(cfg)


def meta_checkpoint(trainer, clip_path: str, folder: str) -> str:
    ctx = trainer.model.prompt_learner.ctx
    shapes = {"prompt_learner.ctx": tuple(ctx.shape)}
    regulator = build_regulator("lowrank", shapes)
    gen = torch.Generator().manual_seed(0)
    dim = trainer.model.text_encoder.text_projection.shape[1]
    encoder = StructureEncoder([torch.randn(m, dim, generator=gen) for m in (4, 16)], [torch.rand(m, generator=gen) + 0.5 for m in (4, 16)])
    structure = StructureInducedRegulator(shapes, encoder.num_features)
    path = os.path.join(folder, "meta_checkpoint.pth")
    save_meta_checkpoint(MetaCheckpoint("CoOp", {"prompt_learner.ctx": ctx.detach().clone()}, regulator.config(),
                                        regulator.state_dict(), checkpoint_fingerprint(clip_path), clip_path,
                                        test_time=test_time_payload(structure, encoder)), path)
    return path


def per_sample(trainer, samples: int, tune: bool) -> Callable[[], None]:
    """A call that predicts the next test sample (cycling over the first ``samples``)."""
    tuner = trainer.build_tuner()
    batches = [trainer.parse_batch_test(b)[0][0] for _, b in zip(range(samples), trainer.test_loader)]
    position = itertools.cycle(range(len(batches)))

    def predict() -> None:
        views = batches[next(position)]
        if tune:
            tuner.predict(views)
        else:
            with torch.no_grad():
                tuner.logits(trainer.model.image_features(views[:1]))

    return predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--views", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = os.path.join(tempfile.gettempdir(), "gram_bench_tpt")
    root = os.path.join(work, "toy")
    build_world(root, seed=0, size="tiny", progress=False)
    clip_path = ensure_tiny_clip(os.path.join(work, "tiny_vit.pt"), arch="vit", seed=0)
    tpt = build("TPT", root, clip_path, args.views)
    ckpt = meta_checkpoint(tpt, clip_path, work)
    gram = build("TPT_GRAM", root, clip_path, args.views, ["TRAINER.GRAM.META_CKPT", ckpt])
    cases = {"zero-shot (1 view, no tuning)": per_sample(tpt, args.samples, tune=False),
             "TPT": per_sample(tpt, args.samples, tune=True),
             "TPT_GRAM": per_sample(gram, args.samples, tune=True)}
    timings = interleaved_rounds(cases, args.samples)
    print(f"Per-sample latency, {args.views} views, 10 classes, tiny CLIP, {args.threads} thread(s); the methods "
          f"take turns on each of {args.samples} samples (rounds); min / median / max (target: TPT_GRAM <= 1.3x TPT)")
    rows = []
    for name, clocks in timings.items():
        ratios = round_ratios(timings, name, "TPT")
        rows.append([name, format_spread(clocks["cpu_s"], 1000, 1), format_spread(clocks["wall_s"], 1000, 1),
                     format_spread(ratios["cpu_s"]), format_spread(ratios["wall_s"])])
    print(tabulate(rows, headers=["method", "CPU per sample (ms)", "wall per sample (ms)", "vs TPT, CPU (x)",
                                  "vs TPT, wall (x)"], tablefmt="github"))


if __name__ == "__main__":
    main()
