"""Frozen-image-tower fast path: image features of the training set, cached per augmentation view.

When prompts do not touch the image encoder (ZeroshotCLIP, CoOp, CoCoOp's image features), the
image tower gives the same output for the same augmented image at every epoch. The cache runs
the training set through the train transform ``views`` times (item ``i`` of view ``v`` seeded
from ``(seed, v, i)``, so the same seed gives the same augmentations whatever the number of
workers; each image file is decoded once for all its views), batched through the encoder, stores
the features on the trainer's device, and serves them in shuffled batches; epoch ``e`` uses
view ``e % views``.
What changes with the cache on: the augmentations are drawn once per view instead of afresh
every epoch (with ``views == max_epoch`` each epoch still sees its own augmentation), and the
batch order comes from a generator seeded with ``seed + epoch`` rather than the global one.
"""
import contextlib
import math
import random
from typing import Any, Callable, Dict, Iterator, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

ImageEncoder = Callable[[torch.Tensor], torch.Tensor]
MIN_ENCODE_BATCH = 64  # images per pass through the encoder while caching, at least (no autograd memory)


def item_seed(seed: int, view: int, index: int) -> int:
    """The random seed of item ``index`` in augmentation view ``view``."""
    return int(np.random.SeedSequence([seed, view, index]).generate_state(1)[0])


@contextlib.contextmanager
def preserved_random_state() -> Iterator[None]:
    """Restore torch (CPU), ``random`` and numpy generator states after the block."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def seed_item_generators(item_rng: int) -> None:
    """Seed the generators a transform draws from (torch's CPU generator, ``random``, numpy)
    with ``item_rng``. Only the CPU generator is seeded: ``torch.manual_seed`` also queues a
    CUDA/XPU seeding that records a traceback per call, a cost per image; the CPU numbers are
    the same."""
    torch.default_generator.manual_seed(item_rng)
    random.seed(item_rng)
    np.random.seed(item_rng % 2**32)


class SeededViews(Dataset):
    """All augmentation views of a Dassl ``DatasetWrapper``'s items: item ``i`` is read and
    decoded once, then transformed ``views`` times, view ``v`` with its generators seeded by
    ``item_seed(seed, v, i)``, so a view does not depend on the number of loader workers or on
    the batch order. ``img`` is ``(views, C, H, W)``."""

    def __init__(self, data_source: Sequence, transform: Callable, seed: int, views: int):
        self.data_source = data_source
        self.transform = transform[0] if isinstance(transform, (list, tuple)) else transform
        self.seed = seed
        self.views = views

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        item = self.data_source[index]
        with Image.open(item.impath) as image:
            picture = image.convert("RGB")
        augmented = []
        for view in range(self.views):
            seed_item_generators(item_seed(self.seed, view, index))
            augmented.append(self.transform(picture))
        return {"img": torch.stack(augmented), "label": item.label, "index": index}


@torch.no_grad()
def compute_feature_views(encode_images: ImageEncoder, loader: DataLoader, views: int, seed: int,
                          device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run every item of ``loader.dataset`` (a Dassl ``DatasetWrapper``: its ``data_source`` and
    train ``transform``) through ``encode_images`` once per view, each image file decoded once,
    read by the loader's number of workers and encoded about ``max(loader.batch_size, MIN_ENCODE_BATCH)``
    images at a time.

    Returns ``(features, labels)``: ``features`` is ``(views, N, dim)`` on ``device`` in dataset
    order, ``labels`` is ``(N,)``. The global random state is left as it was.
    """
    if views < 1:
        raise ValueError(f"CACHE_VIEWS must be >= 1, got {views}")
    wrapper = loader.dataset
    size = len(wrapper.data_source)
    features, labels = None, torch.zeros(size, dtype=torch.long)
    items_per_batch = max(1, max(loader.batch_size or 0, MIN_ENCODE_BATCH) // views)
    dataset = SeededViews(wrapper.data_source, wrapper.transform, seed, views)
    with preserved_random_state():
        for batch in DataLoader(dataset, batch_size=items_per_batch, num_workers=loader.num_workers):
            images = batch["img"].to(device)
            encoded = encode_images(images.flatten(0, 1)).unflatten(0, images.shape[:2])
            if features is None:
                features = torch.zeros(views, size, encoded.shape[-1], dtype=encoded.dtype, device=device)
            features[:, batch["index"].to(device)] = encoded.transpose(0, 1)
            labels[batch["index"]] = batch["label"]
    return features, labels


class CachedFeatureLoader:
    """Yields Dassl-style batches whose ``img`` holds cached image features of shape (B, dim)."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, batch_size: int, drop_last: bool, seed: int):
        self.features = features  # (views, dataset size, dim)
        self.views, self.dataset_size = features.shape[:2]
        self.labels = labels.to(features.device)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the view and the shuffling seed for ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        if self.drop_last:
            return self.dataset_size // self.batch_size
        return math.ceil(self.dataset_size / self.batch_size)

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.dataset_size, generator=generator).to(self.features.device)
        view = self.features[self.epoch % self.views]
        for batch in range(len(self)):
            index = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            yield {"img": view[index], "label": self.labels[index], "index": index}


def cached_train_loader(train_loader: DataLoader, encode_images: ImageEncoder, views: int, seed: int,
                        device: torch.device) -> CachedFeatureLoader:
    """Replace a Dassl ``train_loader_x`` by a loader over its cached image features (same batch
    size and drop_last)."""
    features, labels = compute_feature_views(encode_images, train_loader, views, seed, device)
    return CachedFeatureLoader(features, labels, train_loader.batch_size, bool(train_loader.drop_last), seed)
