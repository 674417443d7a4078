"""Image-feature cache: same features as the slow path, seeded views, epoch batches."""
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from trainers.backbone import feature_cache
from trainers.backbone.feature_cache import (CachedFeatureLoader, cached_train_loader, compute_feature_views,
                                             item_seed)

CPU = torch.device("cpu")


class ImageFiles(Dataset):
    """Just what the cache reads from a Dassl DatasetWrapper: ``data_source`` and ``transform``."""

    def __init__(self, data_source, transform):
        self.data_source = data_source
        self.transform = transform

    def __len__(self):
        return len(self.data_source)


@pytest.fixture(scope="module")
def data_source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    items = []
    for index in range(10):
        path = str(folder / f"{index}.png")
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(path)
        items.append(SimpleNamespace(impath=path, label=index % 3))
    return items


def encode(images):
    return images.flatten(1)[:, :6] * 2.0


RANDOM_TFM = T.Compose([T.RandomResizedCrop(8), T.RandomHorizontalFlip(), T.ToTensor()])


def test_deterministic_transform_gives_the_slow_path_features(data_source):
    loader = DataLoader(ImageFiles(data_source, T.ToTensor()), batch_size=4)
    features, labels = compute_feature_views(encode, loader, 2, 0, CPU)
    slow = torch.stack([encode(T.ToTensor()(Image.open(item.impath)).unsqueeze(0))[0] for item in data_source])
    assert features.shape == (2, 10, 6)
    torch.testing.assert_close(features[0], slow)
    torch.testing.assert_close(features[1], slow)
    assert labels.tolist() == [item.label for item in data_source]


def test_random_views_are_seeded_distinct_and_leave_global_rng_alone(data_source, monkeypatch):
    loader = DataLoader(ImageFiles(data_source, RANDOM_TFM), batch_size=4)
    state = torch.random.get_rng_state()
    first, _ = compute_feature_views(encode, loader, 2, 7, CPU)
    assert torch.equal(torch.random.get_rng_state(), state)
    again, _ = compute_feature_views(encode, loader, 2, 7, CPU)
    other_seed, _ = compute_feature_views(encode, loader, 2, 8, CPU)
    assert torch.equal(first, again)
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(first, other_seed)
    monkeypatch.setattr(feature_cache, "MIN_ENCODE_BATCH", 1)  # batches of one item, spread over both workers
    with_workers = DataLoader(ImageFiles(data_source, RANDOM_TFM), batch_size=3, num_workers=2)
    assert torch.equal(compute_feature_views(encode, with_workers, 2, 7, CPU)[0], first)


def test_each_view_is_the_transform_under_its_item_seed(data_source):
    loader = DataLoader(ImageFiles(data_source, RANDOM_TFM), batch_size=4)
    features, _ = compute_feature_views(encode, loader, 3, 7, CPU)
    for view in range(3):
        for index, item in enumerate(data_source):
            seed = item_seed(7, view, index)
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            with Image.open(item.impath) as image:
                expected = encode(RANDOM_TFM(image.convert("RGB")).unsqueeze(0))[0]
            assert torch.equal(features[view, index], expected)


def test_building_the_cache_seeds_no_accelerator_per_image(data_source, monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "manual_seed", lambda seed: calls.append(seed))
    compute_feature_views(encode, DataLoader(ImageFiles(data_source, RANDOM_TFM), batch_size=4), 2, 7, CPU)
    assert calls == []


def test_loader_serves_every_item_once_per_epoch_cycling_views():
    features = torch.arange(2 * 7, dtype=torch.float32).reshape(2, 7, 1)
    loader = CachedFeatureLoader(features, torch.arange(7), batch_size=3, drop_last=False, seed=0)
    assert len(loader) == 3
    orders = []
    for epoch in range(3):
        loader.set_epoch(epoch)
        batches = list(loader)
        index = torch.cat([batch["index"] for batch in batches])
        assert sorted(index.tolist()) == list(range(7))
        served = torch.cat([batch["img"] for batch in batches])
        assert torch.equal(served[:, 0], features[epoch % 2, index, 0])
        assert torch.equal(torch.cat([batch["label"] for batch in batches]), index)
        orders.append(index.tolist())
    assert orders[0] != orders[1]
    assert len(CachedFeatureLoader(features, torch.arange(7), 3, drop_last=True, seed=0)) == 2


def test_cached_train_loader_keeps_batch_size_and_drop_last(data_source):
    loader = DataLoader(ImageFiles(data_source, T.ToTensor()), batch_size=4, shuffle=True, drop_last=True)
    cached = cached_train_loader(loader, encode, 1, 0, CPU)
    assert len(cached) == len(loader) == 2
    assert all(batch["img"].shape == (4, 6) for batch in cached)


def test_zero_views_is_refused(data_source):
    with pytest.raises(ValueError, match="CACHE_VIEWS"):
        compute_feature_views(encode, DataLoader(ImageFiles(data_source, T.ToTensor())), 0, 0, CPU)

