"""Shared test helpers for the CLIP backbone and the CLIP trainers (the session fixtures they use,
``tiny_vit_checkpoint``, ``tiny_rn_checkpoint`` and ``dataset_root``, are in ``conftest.py``).

- ``ClipColorFixture``: a registered Dassl dataset of small generated images (one colour per
  class, with noise), written under ``cfg.DATASET.ROOT`` on first use.
- ``clip_trainer_cfg`` / ``build_clip_trainer``: a full config (Dassl defaults + every trainer
  key + a tiny trainer YAML + options) and the trainer built from it, as ``train.py`` does.
- ``entry_point_env``: the environment to run the root entry points (``train.py``, ``demo.py``, the
  sweep scripts) in a subprocess.
"""
import os
from typing import List, Optional

import numpy as np
from PIL import Image

RN_TEST_SIZES = {"vision_width": 32}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}
TRAIN_PER_CLASS, TEST_PER_CLASS = 8, 4
# each prompt trainer's tiny-CLIP config (32-pixel inputs, prompt depths <= 2)
TINY_CONFIGS = {
    "CoOp": "configs/trainers/CoOp/tiny_ep10.yaml",
    "CoCoOp": "configs/trainers/CoCoOp/tiny_c4_ep5_batch4.yaml",
    "KgCoOp": "configs/trainers/KgCoOp/tiny_ep6.yaml",
    "MaPLe": "configs/trainers/MaPLe/tiny_ep5_batch8_2ctx.yaml",
    "ProMetaR": "configs/trainers/ProMetaR/tiny_ep5_batch8_4+4ctx.yaml",
    "TPT": "configs/trainers/TPT/tiny.yaml",
    "VPT": "configs/trainers/VPT/tiny_ep5_batch8_4.yaml",
}


def entry_point_env(**extra: str) -> dict:
    """``os.environ`` with the repository and the bundled Dassl importable and one torch thread: several
    threads on a shared CPU make the tiny models' steps several times slower, not faster."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "third_party")]),
               OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def write_color_images(folder: str) -> None:
    """Noisy solid-colour 40x40 PNGs: ``<split>/<class>/<i>.png`` (deterministic)."""
    rng = np.random.default_rng(0)
    for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for name, color in COLORS.items():
            os.makedirs(os.path.join(folder, split, name), exist_ok=True)
            for index in range(count):
                pixels = np.clip(np.array(color) + rng.normal(0, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(os.path.join(folder, split, name, f"{index}.png"))


def _register_fixture_dataset():
    from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum

    @DATASET_REGISTRY.register()
    class ClipColorFixture(DatasetBase):
        """Four colour classes; ``DATASET.NUM_SHOTS`` > 0 keeps that many training images per class."""

        dataset_dir = "clip_color_fixture"

        def __init__(self, cfg):
            root = os.path.join(os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT)), self.dataset_dir)
            if not os.path.isdir(os.path.join(root, "test")):
                write_color_images(root)
            train, test = (self._read(root, split) for split in ("train", "test"))
            if cfg.DATASET.NUM_SHOTS > 0:
                train = self.generate_fewshot_dataset(train, num_shots=cfg.DATASET.NUM_SHOTS)
            super().__init__(train_x=train, val=test, test=test)

        @staticmethod
        def _read(root: str, split: str) -> List:
            return [
                Datum(impath=os.path.join(root, split, name, f"{index}.png"), label=label, classname=name)
                for label, name in enumerate(COLORS)
                for index in range(TRAIN_PER_CLASS if split == "train" else TEST_PER_CLASS)
            ]

    return ClipColorFixture


ClipColorFixture = _register_fixture_dataset()


def clip_trainer_cfg(trainer: str, config_file: str, root: str, output_dir: str, backbone: str,
                     opts: Optional[list] = None):
    """The frozen config ``train.py`` would build for these arguments (seed 1)."""
    from dassl.config import get_cfg_default

    from trainers.config import extend_cfg

    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.merge_from_file(os.path.join(REPO, config_file))
    cfg.DATASET.NAME = "ClipColorFixture"
    cfg.DATASET.ROOT = root
    cfg.OUTPUT_DIR = output_dir
    cfg.SEED = 1
    cfg.TRAINER.NAME = trainer
    cfg.MODEL.BACKBONE.NAME = backbone
    cfg.merge_from_list(list(opts or []))
    cfg.freeze()
    return cfg


def build_clip_trainer(trainer: str, config_file: str, root: str, output_dir: str, backbone: str,
                       opts: Optional[list] = None):
    """Seed and build the trainer as ``train.py`` does."""
    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed

    import trainers  # noqa: F401  (registers the trainers)

    cfg = clip_trainer_cfg(trainer, config_file, root, output_dir, backbone, opts)
    set_random_seed(cfg.SEED)
    return build_trainer(cfg)


def record_losses(trainer) -> List[List[float]]:
    """Make ``trainer`` record each training batch's loss; returns the per-epoch lists."""
    history: List[List[float]] = []
    step = trainer.forward_backward

    def forward_backward(batch):
        summary = step(batch)
        if trainer.batch_idx == 0:
            history.append([])
        history[-1].append(summary["loss"])
        return summary

    trainer.forward_backward = forward_backward
    return history
