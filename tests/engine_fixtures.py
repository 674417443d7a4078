"""Shared pieces of the engine tests: a generated image dataset and a tiny linear trainer.

``write_tiny_colors(root)`` writes small PNGs whose dominant colour is the class (plus noise),
read back by the ``TinyColors`` dataset; ``TinyLinear`` is a ``TrainerX`` with one linear layer
over the pixels, trained exactly as CoOp trains (cross-entropy, scheduler stepped after the
last batch of each epoch).
"""
import os
import os.path as osp
from typing import List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from yacs.config import CfgNode

from dassl.config import get_cfg_default
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum
from dassl.engine import TRAINER_REGISTRY, TrainerX
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer

CLASSNAMES = ["red", "green", "blue"]
IMAGE_SIZE = 8


def write_tiny_colors(root: str, per_class: int = 8, seed: int = 0) -> None:
    """Write ``root/tiny_colors/{train,test}/<class>/<i>.png``: noisy images tinted by class."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class), ("test", per_class // 2)):
        for label, classname in enumerate(CLASSNAMES):
            folder = osp.join(root, "tiny_colors", split, classname)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 200, size=(IMAGE_SIZE, IMAGE_SIZE, 3))
                pixels[..., label] += 40
                Image.fromarray(pixels.astype(np.uint8)).save(osp.join(folder, f"{i}.png"))


def _read_split(folder: str) -> List[Datum]:
    return [
        Datum(impath=osp.join(folder, classname, name), label=label, classname=classname)
        for label, classname in enumerate(CLASSNAMES)
        for name in sorted(os.listdir(osp.join(folder, classname)))
    ]


@DATASET_REGISTRY.register(force=True)
class TinyColors(DatasetBase):
    """Three colour classes; val = test (small)."""

    dataset_dir = "tiny_colors"

    def __init__(self, cfg):
        root = osp.join(cfg.DATASET.ROOT, self.dataset_dir)
        train = _read_split(osp.join(root, "train"))
        test = _read_split(osp.join(root, "test"))
        train = self.generate_fewshot_dataset(train, num_shots=cfg.DATASET.NUM_SHOTS)
        super().__init__(train_x=train, val=test, test=test)


@TRAINER_REGISTRY.register(force=True)
class TinyLinear(TrainerX):
    """Linear classifier over raw pixels; records every batch loss in ``loss_history``."""

    def build_model(self):
        self.loss_history: List[float] = []
        height, width = self.cfg.INPUT.SIZE
        self.model = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(3 * height * width, self.num_classes))
        self.model.to(self.device)
        self.optim = build_optimizer(self.model, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model("linear", self.model, self.optim, self.sched)

    def forward_backward(self, batch):
        image, label, _ = self.parse_batch_train(batch)
        output = self.model(image)
        loss = F.cross_entropy(output, label)
        self.model_backward_and_update(loss)
        self.loss_history.append(loss.item())
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return {"loss": loss.item(), "acc": compute_accuracy(output, label)[0].item()}


def make_cfg(root: str, output_dir: str, *opts) -> CfgNode:
    """A frozen config training ``TinyLinear`` on ``TinyColors``, with ``KEY VALUE`` overrides."""
    cfg = get_cfg_default()
    cfg.merge_from_list([
        "DATASET.ROOT", root, "DATASET.NAME", "TinyColors", "TRAINER.NAME", "TinyLinear",
        "OUTPUT_DIR", output_dir, "INPUT.SIZE", (IMAGE_SIZE, IMAGE_SIZE), "INPUT.TRANSFORMS", ("random_flip", "normalize"),
        "DATALOADER.NUM_WORKERS", 0, "DATALOADER.TRAIN_X.BATCH_SIZE", 4, "DATALOADER.TEST.BATCH_SIZE", 8,
        "OPTIM.NAME", "sgd", "OPTIM.LR", 0.02, "OPTIM.MAX_EPOCH", 3, "OPTIM.LR_SCHEDULER", "cosine",
        "OPTIM.WARMUP_EPOCH", 1, "OPTIM.WARMUP_TYPE", "constant", "OPTIM.WARMUP_CONS_LR", 0.01,
        "TRAIN.PRINT_FREQ", 2, "VERBOSE", False, "SEED", 1,
    ])
    cfg.merge_from_list(list(opts))
    cfg.freeze()
    return cfg


def linear_weights(trainer: TinyLinear) -> torch.Tensor:
    return trainer.model[2].weight.detach().clone()
