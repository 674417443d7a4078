"""The toy world's CLIP: pretrained once on the world's corpus, saved in OpenAI's state-dict format, reused.

``ensure_toy_clip`` builds (or reuses) the world, then pretrains the tiny CLIP unless
``<root>/toy_clip/toy_vit.pt`` was already trained for this world and these settings: the side file
``toy_vit.json`` records the cache key (a hash of the world's fingerprint, the pretraining settings and seed)
together with the training time and the zero-shot accuracy of the saved model on every toy dataset.
The checkpoint loads with ``clip.model.build_model`` (``trainers.backbone.clip_loader.load_clip``), so
``MODEL.BACKBONE.NAME <root>/toy_clip/toy_vit.pt`` works in every trainer.
"""
import hashlib
import json
import os
from typing import Dict, List, Tuple, Union

import numpy as np
from PIL import Image

from datasets.base import read_split, subsample_classes
from fileio.atomic import write_atomically
from datasets.corpus import ImageTextCorpus
from datasets.toy_world.presets import PretrainSettings, WorldSize, resolve_world_size
from datasets.toy_world.pretrain import IGNORED_LABEL, pretrain_clip
from datasets.toy_world.specs import DATASET_SPECS
from datasets.toy_world.scenes import ATTRIBUTE_VALUES, MIXED
from datasets.toy_world.world import CORPUS_GROUP_SIZE, WorldInfo, build_world
from datasets.toy_world.zeroshot import zero_shot_accuracy
from trainers.backbone.clip_loader import load_clip
from testing.tiny_clip import save_clip_state_dict

PRETRAIN_VERSION = 2
TOY_CLIP_DIR = "toy_clip"
TOY_CLIP_FILENAME = "toy_vit.pt"
TOY_CLIP_RECORD = "toy_vit.json"


def toy_clip_key(world: WorldInfo, settings: PretrainSettings, seed: int) -> str:
    """Cache key of a pretrained toy CLIP (first 16 hex digits of a sha256)."""
    described = {"version": PRETRAIN_VERSION, "world": world.fingerprint, "settings": settings.as_dict(), "seed": seed}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def read_images(paths: List[str]) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` array of equally sized image files."""
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in paths])


def load_corpus(world: WorldInfo) -> Tuple[np.ndarray, List[str], np.ndarray]:
    """All images (uint8 array), captions and attribute labels (indices into ``ATTRIBUTE_VALUES``, one column
    per attribute, ``IGNORED_LABEL`` for a mixed one) of the world's corpus, in manifest order."""
    with open(world.corpus_metadata) as file:
        header, *rows = [line.rstrip("\n").split("\t") for line in file]
    columns = [header.index(name) for name in ATTRIBUTE_VALUES]
    labels_by_path = {
        row[0]: [
            IGNORED_LABEL if row[column] == MIXED else values.index(row[column])
            for values, column in zip(ATTRIBUTE_VALUES.values(), columns)
        ]
        for row in rows
    }
    images, captions, labels = [], [], []
    for item in ImageTextCorpus(world.corpus_manifest):
        if item.id not in labels_by_path:
            raise ValueError(f"{world.corpus_metadata}: no attributes for corpus image {item.id}")
        images.append(np.asarray(item.image))
        captions.append(item.caption)
        labels.append(labels_by_path[item.id])
    return np.stack(images), captions, np.asarray(labels, dtype=np.int64)


def evaluate_zero_shot(clip_path: str, root: str) -> Dict[str, Dict[str, float]]:
    """Zero-shot accuracy (%) of a CLIP checkpoint on each toy dataset's test split: all classes, CoCoOp's
    base and new halves, and chance (100 / number of classes)."""
    model = load_clip(clip_path)
    results = {}
    for name, spec in DATASET_SPECS.items():
        dataset_dir = os.path.join(root, spec.dataset_dir)
        _, _, test = read_split(os.path.join(dataset_dir, spec.split_filename), os.path.join(dataset_dir, "images"))
        scores = {"chance": 100.0 / len(spec.classnames)}
        for subsample in ("all", "base", "new"):
            (items,) = subsample_classes(test, subsample=subsample)
            names = {item.label: item.classname for item in items}
            classnames = [names[label] for label in range(len(names))]
            images = read_images([item.impath for item in items])
            scores[subsample] = zero_shot_accuracy(model, images, [item.label for item in items], classnames)
        results[name] = scores
    return results


def ensure_toy_clip(
    root: str,
    seed: int = 0,
    size: Union[str, WorldSize] = "default",
    resolution: int = 32,
    progress: bool = True,
) -> str:
    """Path of the toy CLIP for the world under ``root``; builds the world and pretrains the CLIP if needed.

    ``size``: a preset name or a ``WorldSize`` (its ``pretrain`` settings are used).
    """
    preset = resolve_world_size(size)
    world = build_world(root, seed=seed, size=preset, resolution=resolution, progress=progress)
    settings = preset.pretrain
    clip_dir = os.path.join(world.root, TOY_CLIP_DIR)
    clip_path = os.path.join(clip_dir, TOY_CLIP_FILENAME)
    record_path = os.path.join(clip_dir, TOY_CLIP_RECORD)
    key = toy_clip_key(world, settings, seed)
    if os.path.isfile(clip_path) and read_toy_clip_record(root).get("key") == key:
        return clip_path

    images, captions, labels = load_corpus(world)
    num_values = [len(values) for values in ATTRIBUTE_VALUES.values()]
    model, summary = pretrain_clip(
        images, captions, labels, num_values, settings, group_size=CORPUS_GROUP_SIZE, seed=seed, progress=progress
    )
    save_clip_state_dict(model, clip_path)
    record = {
        "key": key,
        "world_fingerprint": world.fingerprint,
        "seed": seed,
        "size": world.size,
        "settings": settings.as_dict(),
        "corpus_pairs": len(captions),
        "pretrain_seconds": round(summary.pop("seconds"), 1),
        **{name: round(value, 4) for name, value in summary.items()},
        "zero_shot": evaluate_zero_shot(clip_path, world.root),
    }
    write_atomically(record_path, lambda file: json.dump(record, file, indent=2))
    return clip_path


def read_toy_clip_record(root: str) -> dict:
    """The side record of ``<root>/toy_clip/toy_vit.pt`` (empty when there is none or it is unreadable)."""
    path = os.path.join(os.path.abspath(os.path.expanduser(root)), TOY_CLIP_DIR, TOY_CLIP_RECORD)
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, json.JSONDecodeError):
        return {}
