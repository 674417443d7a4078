"""Datum/DatasetBase semantics, few-shot sampling, samplers, transforms and the data manager."""
import random

import pytest
import torch

from dassl.config import get_cfg_default
from dassl.data import DataManager
from dassl.data.datasets import DatasetBase, Datum
from dassl.data.samplers import RandomClassSampler, RandomDomainSampler, build_sampler
from dassl.data.transforms import build_transform
from engine_fixtures import IMAGE_SIZE, make_cfg, write_tiny_colors


def items(labels, domains=None):
    domains = domains or [0] * len(labels)
    return [Datum(label=y, domain=d, classname=f"c{y}") for y, d in zip(labels, domains)]


def test_datum_is_read_only_and_checks_its_file(tmp_path):
    datum = Datum(label=2, domain=1, classname="dog")
    assert (datum.impath, datum.label, datum.domain, datum.classname) == ("", 2, 1, "dog")
    with pytest.raises(AttributeError):
        datum.label = 3
    missing = str(tmp_path / "nope.jpg")
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        Datum(impath=missing)


def test_dataset_base_derives_classes_from_train_x():
    train = items([0, 2, 2, 1])
    dataset = DatasetBase(train_x=train, test=items([0]))
    assert dataset.num_classes == 3
    assert dataset.lab2cname == {0: "c0", 1: "c1", 2: "c2"}
    assert dataset.classnames == ["c0", "c1", "c2"]


DATA = items([0] * 10 + [1] * 7 + [2] * 2)


def fewshot(seed, num_shots, repeat=False):
    """Positions in DATA of the few-shot items drawn after ``random.seed(seed)``."""
    random.seed(seed)
    sampled = DatasetBase(train_x=DATA).generate_fewshot_dataset(DATA, num_shots=num_shots, repeat=repeat)
    return [DATA.index(d) for d in sampled]


def test_fewshot_counts_per_class():
    counts = {y: sum(1 for i in fewshot(seed=1, num_shots=4) if DATA[i].label == y) for y in (0, 1, 2)}
    assert counts == {0: 4, 1: 4, 2: 2}  # a class smaller than num_shots keeps all it has
    assert len(set(fewshot(seed=1, num_shots=4))) == 10  # no duplicates without repeat
    repeated = fewshot(seed=1, num_shots=4, repeat=True)
    assert sum(1 for i in repeated if DATA[i].label == 2) == 4


def test_fewshot_is_deterministic_per_seed():
    assert fewshot(seed=3, num_shots=3) == fewshot(seed=3, num_shots=3)
    assert fewshot(seed=3, num_shots=3) != fewshot(seed=4, num_shots=3)


def test_fewshot_with_several_sources_and_no_shots():
    data = items([0, 0, 1, 1])
    base = DatasetBase(train_x=data)
    assert base.generate_fewshot_dataset(data, num_shots=-1) is data
    train, val = base.generate_fewshot_dataset(data, data, num_shots=1)
    assert len(train) == 2 and len(val) == 2


def test_split_by_label_and_domain():
    data = items([1, 0, 1], domains=[0, 1, 1])
    base = DatasetBase(train_x=data)
    assert {k: len(v) for k, v in base.split_dataset_by_label(data).items()} == {1: 2, 0: 1}
    assert {k: len(v) for k, v in base.split_dataset_by_domain(data).items()} == {0: 1, 1: 2}


def test_random_domain_sampler_balances_domains_per_batch():
    data = items([0] * 24, domains=[0] * 8 + [1] * 8 + [2] * 8)
    sampler = RandomDomainSampler(data, batch_size=6, n_domain=3)
    order = list(sampler)
    assert len(order) == len(sampler) == 24 and len(set(order)) == 24
    for start in range(0, len(order), 6):
        assert sorted(data[i].domain for i in order[start:start + 6]) == [0, 0, 1, 1, 2, 2]


def test_random_class_sampler_groups_instances():
    data = items([0] * 4 + [1] * 4 + [2] * 2)
    order = list(RandomClassSampler(data, batch_size=4, n_ins=2))
    for start in range(0, len(order), 2):
        pair = {data[i].label for i in order[start:start + 2]}
        assert len(pair) == 1


def test_build_sampler_unknown_name():
    with pytest.raises(ValueError, match="Unknown sampler type: Shuffle"):
        build_sampler("Shuffle", data_source=items([0]))


def test_transforms_output_size_and_unknown_choice():
    from PIL import Image

    cfg = get_cfg_default()
    cfg.INPUT.SIZE = (16, 16)
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    image = Image.new("RGB", (40, 30), color=(10, 200, 30))
    assert build_transform(cfg, is_train=True)(image).shape == (3, 16, 16)
    assert build_transform(cfg, is_train=False)(image).shape == (3, 16, 16)
    cfg.INPUT.TRANSFORMS = ("random_flip", "sharpen")
    with pytest.raises(ValueError, match=r"Unknown INPUT.TRANSFORMS \['sharpen'\]"):
        build_transform(cfg)


def test_data_manager_builds_loaders_with_dassl_batches(tmp_path):
    write_tiny_colors(str(tmp_path))
    cfg = make_cfg(str(tmp_path), str(tmp_path / "out"), "DATASET.NUM_SHOTS", 2)
    dm = DataManager(cfg)
    assert dm.num_classes == 3 and dm.lab2cname == {0: "red", 1: "green", 2: "blue"}
    assert len(dm.dataset.train_x) == 6
    batch = next(iter(dm.train_loader_x))
    assert set(batch) == {"img", "label", "domain", "impath", "index"}
    assert batch["img"].shape == (4, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert len(dm.train_loader_x) == 1  # drop_last for training
    test_batches = list(dm.test_loader)
    assert sum(len(b["label"]) for b in test_batches) == 12
    assert torch.equal(torch.cat([b["index"] for b in test_batches]), torch.arange(12))
