"""The held-out class sets: drawn beside a world with their own seed, read by their registered datasets."""
import os

import pytest
from dassl.data.datasets import DATASET_REGISTRY

import datasets  # noqa: F401  (registers every dataset)
from datasets.toy_world import HELDOUT_SPECS, PretrainSettings, WorldSize, build_heldout_datasets, build_world
from datasets.toy_world.specs import SIZE_SHAPE_PAIRS
from datasets.toy_world.world import HELDOUT_STAMP_FILENAME, ImageJob, draw_job
from datasets.fixtures import dataset_cfg
from tests.test_toy_world import tree_digest

MICRO = WorldSize("micro", (3, 1, 2), 2, 20, PretrainSettings())


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("toy_heldout") / "data")
    build_world(path, seed=0, size=MICRO, workers=1, progress=False)
    build_heldout_datasets(path, size=MICRO, workers=1, progress=False)
    return path


def test_heldout_sets_load_with_every_class_and_the_base_new_halves(root):
    for name, spec in HELDOUT_SPECS.items():
        dataset = DATASET_REGISTRY.get(name)(dataset_cfg(root, name))
        assert len(dataset.train_x) == 3 * len(spec.classnames) and len(dataset.test) == 2 * len(spec.classnames)
        assert sorted({item.classname for item in dataset.test}) == sorted(spec.classnames)
        base = DATASET_REGISTRY.get(name)(dataset_cfg(root, name, subsample="base"))
        assert {item.classname for item in base.test} == set(spec.classnames[: (len(spec.classnames) + 1) // 2])


def test_size_shape_halves_each_hold_both_sizes_and_every_shape():
    half = len(SIZE_SHAPE_PAIRS) // 2
    for pairs in (SIZE_SHAPE_PAIRS[:half], SIZE_SHAPE_PAIRS[half:]):
        assert {size for size, _ in pairs} == {"small", "big"} and len({shape for _, shape in pairs}) == 6


def test_images_show_their_label_and_depend_on_the_heldout_seed():
    _, scene, _ = draw_job(2026, 32, ImageJob("ToyPositions/test", 4, 0, ""))
    assert scene.position == "center" and scene.num_objects == 1
    _, scene, _ = draw_job(2026, 32, ImageJob("ToySizeShapes/test", 0, 0, ""))
    assert (scene.groups[0].size, scene.groups[0].shape) == SIZE_SHAPE_PAIRS[0]
    image, _, _ = draw_job(2026, 32, ImageJob("ToyColors/train", 2, 1, ""))
    other, _, _ = draw_job(2027, 32, ImageJob("ToyColors/train", 2, 1, ""))
    assert (image != other).any()


def test_second_build_writes_nothing_and_a_missing_world_is_named(root, tmp_path):
    before = tree_digest(root)
    stamp = os.path.join(root, HELDOUT_STAMP_FILENAME)
    modified = os.path.getmtime(stamp)
    build_heldout_datasets(root, size=MICRO, workers=1, progress=False)
    assert tree_digest(root) == before and os.path.getmtime(stamp) == modified
    with pytest.raises(FileNotFoundError, match="no toy world"):
        build_heldout_datasets(str(tmp_path), size=MICRO)
