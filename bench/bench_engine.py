"""How much of a TrainerX epoch is spent in the model, and how much in the engine around it.

The data are precomputed feature tensors (what a frozen-image-tower trainer iterates over),
served through the engine's own DataManager / DatasetWrapper / sampler / DataLoader path; the
model is a small MLP. The "model" time is everything inside ``forward_backward`` (forward,
loss, backward, optimizer step, LR update); the rest of ``run_epoch`` (sampling, collation,
meters, progress lines, tensorboard scalars) is the engine's overhead. Issue 2 asks for at
least 90% of the epoch in the model.

    PYTHONPATH=third_party:. python bench/bench_engine.py [--items 8192] [--hidden 1024] [--batch-size 32]
"""
import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

from dassl.config import get_cfg_default
from dassl.data import DataManager, DatasetWrapper
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum
from dassl.engine import TRAINER_REGISTRY, TrainerX
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import set_random_seed
from interleaved import CLOCKS, format_spread  # bench/ is the script's folder, first on sys.path
from tabulate import tabulate

FEATURE_DIM = 512
NUM_CLASSES = 100


def make_feature_table(num_items: int, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random class means plus noise: (num_items, FEATURE_DIM) features and their labels."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_items) % NUM_CLASSES
    means = torch.randn(NUM_CLASSES, FEATURE_DIM, generator=generator)
    features = means[labels] + 0.5 * torch.randn(num_items, FEATURE_DIM, generator=generator)
    return {"features": features, "labels": labels}


FEATURE_TABLE: Dict[str, torch.Tensor] = {}


@DATASET_REGISTRY.register(force=True)
class CachedFeatures(DatasetBase):
    """Items without image files: the wrapper serves rows of ``FEATURE_TABLE``."""

    def __init__(self, cfg):
        labels = FEATURE_TABLE["labels"].tolist()
        items = [Datum(label=y, classname=f"class_{y}") for y in labels]
        super().__init__(train_x=items, val=items[:NUM_CLASSES], test=items[:NUM_CLASSES])


class CachedFeatureWrapper(DatasetWrapper):
    """Returns the cached feature row as ``img`` (Dassl's batch dict, no image decoding)."""

    def __getitem__(self, idx: int) -> Dict:
        item = self.data_source[idx]
        return {"img": FEATURE_TABLE["features"][idx], "label": item.label, "domain": item.domain,
                "impath": item.impath, "index": idx}


@TRAINER_REGISTRY.register(force=True)
class FeatureMLP(TrainerX):
    """A two-hidden-layer MLP classifier over cached features; times its own forward_backward."""

    def build_data_loader(self):
        self.dm = DataManager(self.cfg, dataset_wrapper=CachedFeatureWrapper)
        self.train_loader_x, self.train_loader_u = self.dm.train_loader_x, self.dm.train_loader_u
        self.val_loader, self.test_loader = self.dm.val_loader, self.dm.test_loader
        self.num_classes, self.num_source_domains = self.dm.num_classes, self.dm.num_source_domains
        self.lab2cname = self.dm.lab2cname

    def build_model(self):
        hidden = self.cfg.MODEL.HEAD.HIDDEN_LAYERS[0]
        self.model = nn.Sequential(
            nn.Linear(FEATURE_DIM, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, self.num_classes)
        )
        self.optim = build_optimizer(self.model, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model("mlp", self.model, self.optim, self.sched)
        self.model_seconds = {"wall_s": 0.0, "cpu_s": 0.0}

    def forward_backward(self, batch):
        start, cpu_start = time.perf_counter(), time.process_time()
        features, label, _ = self.parse_batch_train(batch)
        output = self.model(features)
        loss = F.cross_entropy(output, label)
        self.model_backward_and_update(loss)
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        summary = {"loss": loss.item()}
        self.model_seconds["wall_s"] += time.perf_counter() - start
        self.model_seconds["cpu_s"] += time.process_time() - cpu_start
        return summary


def build_cfg(output_dir: str, args: argparse.Namespace):
    cfg = get_cfg_default()
    cfg.merge_from_list([
        "DATASET.NAME", "CachedFeatures", "TRAINER.NAME", "FeatureMLP", "OUTPUT_DIR", output_dir,
        "DATALOADER.NUM_WORKERS", 0, "DATALOADER.TRAIN_X.BATCH_SIZE", args.batch_size,
        "MODEL.HEAD.HIDDEN_LAYERS", (args.hidden,), "OPTIM.NAME", "sgd", "OPTIM.LR", 0.01,
        "OPTIM.MAX_EPOCH", 2, "OPTIM.LR_SCHEDULER", "cosine", "TRAIN.PRINT_FREQ", 50, "VERBOSE", False,
    ])
    cfg.freeze()
    return cfg


def profile_epochs(trainer: FeatureMLP, rounds: int) -> Dict[str, Dict[str, list]]:
    """Time ``rounds`` epochs of ``run_epoch`` (after a warm-up epoch), each split into model vs engine,
    by wall and by CPU time: ``{clock: {"epoch": [...], "model": [...]}}``."""
    trainer.before_train()  # opens the tensorboard writer, as in real training
    trainer.epoch = 0
    trainer.run_epoch()  # warm-up: allocator, first-call overheads
    timings = {clock: {"epoch": [], "model": []} for clock in CLOCKS}
    for trainer.epoch in range(1, rounds + 1):
        trainer.model_seconds = {clock: 0.0 for clock in CLOCKS}
        start, cpu_start = time.perf_counter(), time.process_time()
        trainer.run_epoch()
        epoch = {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu_start}
        for clock in CLOCKS:
            timings[clock]["epoch"].append(epoch[clock])
            timings[clock]["model"].append(trainer.model_seconds[clock])
    trainer.close_writer()
    return timings


def engine_hotspots(trainer: FeatureMLP, top: int = 8) -> str:
    """cProfile of one more epoch: the ``top`` functions by own time (model and engine alike)."""
    profiler = cProfile.Profile()
    profiler.enable()
    trainer.run_epoch()
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(top)
    return stream.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--items", type=int, default=8192)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs")
    parser.add_argument("--profile", action="store_true", help="also print the top functions by own time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    FEATURE_TABLE.update(make_feature_table(args.items))
    set_random_seed(0)
    with tempfile.TemporaryDirectory() as output_dir:
        stdout = sys.stdout
        sys.stdout = open(os.devnull, "w")  # progress lines still get formatted, just not shown
        try:
            trainer = FeatureMLP(build_cfg(output_dir, args))
            timings = profile_epochs(trainer, args.rounds)
        finally:
            sys.stdout.close()
            sys.stdout = stdout
        print(f"TrainerX epoch over cached tensors: {trainer.num_batches} batches of {args.batch_size}, "
              f"MLP {FEATURE_DIM}-{args.hidden}-{args.hidden}-{NUM_CLASSES}, {args.threads} thread(s), "
              f"{args.rounds} epochs; min / median / max over epochs (target: >= 90% in the model)")
        rows = []
        for clock, parts in timings.items():
            engine = [epoch - model for epoch, model in zip(parts["epoch"], parts["model"])]
            fractions = [model / epoch for epoch, model in zip(parts["epoch"], parts["model"])]
            rows.append([clock[:-2], format_spread(parts["epoch"], digits=3), format_spread(engine, digits=3),
                         format_spread([1e6 * e / trainer.num_batches for e in engine], digits=0),
                         format_spread(fractions, 100, 1)])
        print(tabulate(rows, headers=["clock", "epoch (s)", "engine (s)", "engine per batch (us)", "in the model (%)"]))
        if args.profile:
            trainer.init_writer(os.path.join(output_dir, "tensorboard"))
            print(engine_hotspots(trainer))
            trainer.close_writer()


if __name__ == "__main__":
    main()
