"""Helpers of the GRAM pipeline tests: a tiny captioned corpus (clustered by the ``gram_split`` fixture of
``conftest.py``) and meta-training runs on it."""
import os

import numpy as np
from PIL import Image

from helpers_clip import COLORS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STYLES = {"plain": 10, "noisy": 60}
PER_COLOR_STYLE = 6


def write_caption_corpus(folder: str) -> str:
    """Colour images in two styles with captions; returns the TSV manifest path."""
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    lines = []
    for style, noise in STYLES.items():
        for name, color in COLORS.items():
            for index in range(PER_COLOR_STYLE):
                pixels = np.clip(np.array(color) + rng.normal(0, noise, (32, 32, 3)), 0, 255).astype(np.uint8)
                relative = f"images/{style}_{name}_{index}.png"
                Image.fromarray(pixels).save(os.path.join(folder, relative))
                lines.append(f"{relative}\ta {style} {name} picture number {index}")
    manifest = os.path.join(folder, "corpus.tsv")
    with open(manifest, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return manifest


def cluster_caption_corpus(folder, backbone):
    """Write the tiny corpus under ``folder`` and cluster it with the CLIP ``backbone``: ``(split_file, manifest)``."""
    from datasets.corpus import ImageTextCorpus
    from trainers.backbone.clip_loader import checkpoint_fingerprint, load_clip
    from trainers.backbone.transforms import clip_preprocess
    from clustering import ClusteringSettings, build_split, encode_corpus, save_split

    manifest = write_caption_corpus(folder)
    model = load_clip(backbone).float().eval()
    fingerprint = checkpoint_fingerprint(backbone)
    items = ((item.id, item.image, item.caption) for item in ImageTextCorpus(manifest))
    out_dir = os.path.join(folder, "clusters")
    encoded = encode_corpus(model, clip_preprocess(32), items, os.path.join(out_dir, "features"),
                            clip_fingerprint=fingerprint, shard_size=64, batch_size=32, progress=False)
    settings = ClusteringSettings(method="kmeans", k=4, niter=10, seed=1)
    split = build_split(encoded.image, encoded.text, encoded.ids, settings, fingerprint)
    return save_split(split, out_dir), manifest


def meta_cfg(split_file, backbone, output_dir, opts=(), config_file="configs/gram/tiny_coop.yaml"):
    from tools.cli import default_cfg

    cfg = default_cfg()
    cfg.merge_from_file(os.path.join(REPO, config_file))
    cfg.MODEL.BACKBONE.NAME = backbone
    cfg.TRAINER.GRAM.SPLIT_FILE = split_file
    cfg.OUTPUT_DIR = output_dir
    cfg.SEED = 1
    cfg.merge_from_list(["TRAINER.GRAM.ITERS_PER_EPOCH", 2, "TRAINER.GRAM.META_BATCH", 1,
                         "TRAINER.GRAM.VAL_TASKS", 1] + list(opts))
    cfg.freeze()
    return cfg


def build_meta_trainer(split_file, backbone, output_dir, opts=(), config_file="configs/gram/tiny_coop.yaml"):
    from dassl.utils import set_random_seed

    import trainers  # noqa: F401
    from trainers.gram.meta_trainer import MetaTrainer

    cfg = meta_cfg(split_file, backbone, output_dir, opts, config_file)
    set_random_seed(cfg.SEED)
    return MetaTrainer(cfg)


def run_meta_training(split_file, backbone, output_dir, opts=(), config_file="configs/gram/tiny_coop.yaml"):
    trainer = build_meta_trainer(split_file, backbone, output_dir, opts, config_file)
    trainer.train()
    return trainer


def write_fresh_meta_checkpoint(method: str, prompts: dict, backbone: str, path: str) -> str:
    """A meta checkpoint holding ``prompts`` as the init and a fresh low-rank regulator (no meta-training)."""
    from trainers.backbone.clip_loader import checkpoint_fingerprint
    from trainers.gram.meta_checkpoint import fresh_meta_checkpoint, save_meta_checkpoint

    save_meta_checkpoint(fresh_meta_checkpoint(method, prompts, checkpoint_fingerprint(backbone), backbone), path)
    return path
