"""The toy world generator: determinism, CoOp layout read by the registered datasets, the corpus manifest."""
import hashlib
import io
import json
import os
import shutil
from collections import Counter

import numpy as np
import pytest
from dassl.data.datasets import DATASET_REGISTRY
from PIL import Image

import datasets  # noqa: F401  (registers every dataset)
from datasets.corpus import ImageTextCorpus
from datasets.fixtures import dataset_cfg
from datasets.toy_world import DATASET_SPECS, PretrainSettings, WorldSize, build_world
from datasets.toy_world.captions import caption_scene
from datasets.toy_world.scenes import sample_corpus_scene
from datasets.toy_world.vocabulary import STYLES
from datasets.toy_world.world import CORPUS_GROUP_SIZE, CORPUS_STREAM, STAMP_FILENAME, ImageJob, draw_job

MICRO = WorldSize("micro", (3, 1, 2), 2, 20, PretrainSettings())


def tree_digest(root: str) -> dict:
    """sha256 of every file under root, by relative path."""
    digests = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as file:
                digests[os.path.relpath(path, root)] = hashlib.sha256(file.read()).hexdigest()
    return digests


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(str(tmp_path_factory.mktemp("toy") / "data"), seed=0, size=MICRO, workers=1, progress=False)


def test_same_seed_draws_same_bytes_and_other_seed_differs():
    jobs = [ImageJob(CORPUS_STREAM, 0, index, "") for index in range(5)] + [
        ImageJob(f"{name}/test", 1, 0, "") for name in ("ToyShapes", "ToyTextures", "ToyShapesSketch")
    ]
    def drawn(seed: int) -> list:
        return [(png_bytes(image), caption) for image, _, caption in (draw_job(seed, 32, job) for job in jobs)]

    first = drawn(0)
    assert first == drawn(0)
    assert all(ours[0] != theirs[0] for ours, theirs in zip(first, drawn(1)))
    assert len({image for image, _ in first}) == len(jobs)


def test_world_files_are_identical_across_builds_and_worker_counts(world, tmp_path):
    rebuilt = build_world(str(tmp_path / "again"), seed=0, size=MICRO, workers=2, progress=False)
    assert not rebuilt.reused and rebuilt.fingerprint == world.fingerprint
    ours, theirs = tree_digest(world.root), tree_digest(rebuilt.root)
    del ours[STAMP_FILENAME], theirs[STAMP_FILENAME]  # the stamp records the build time
    assert ours == theirs


def test_second_build_reuses_and_other_seed_rebuilds_everything(world, tmp_path):
    root = str(tmp_path / "copy")
    shutil.copytree(world.root, root)
    stale = os.path.join(root, "toy_shapes", "split_fewshot", "shot_1-seed_1.pkl")
    os.makedirs(os.path.dirname(stale))
    open(stale, "wb").close()
    assert build_world(root, seed=0, size=MICRO, progress=False).reused
    assert os.path.exists(stale)

    other = build_world(root, seed=1, size=MICRO, workers=1, progress=False)
    assert not other.reused and other.fingerprint != world.fingerprint
    assert not os.path.exists(stale)
    ours, theirs = tree_digest(world.root), tree_digest(root)
    images = [path for path in ours if path.endswith(".png")]
    assert set(images) == {path for path in theirs if path.endswith(".png")}
    assert not any(ours[path] == theirs[path] for path in images)


@pytest.mark.parametrize("name", sorted(DATASET_SPECS))
def test_registered_dataset_reads_the_layout(world, name):
    spec = DATASET_SPECS[name]
    dataset = DATASET_REGISTRY.get(name)(dataset_cfg(world.root, name))
    n = len(spec.classnames)
    assert dataset.num_classes == n
    assert dataset.classnames == list(spec.classnames)
    per_class = (MICRO.shifted_test_per_class,) * 3 if spec.test_only else MICRO.images_per_class
    assert [len(dataset.train_x), len(dataset.val), len(dataset.test)] == [n * k for k in per_class]
    assert Counter(item.label for item in dataset.test) == {label: per_class[2] for label in range(n)}
    for item in dataset.test:
        assert os.path.basename(os.path.dirname(item.impath)) == item.classname.replace(" ", "_")
        assert Image.open(item.impath).size == (32, 32)


def test_split_file_is_coop_format(world):
    spec = DATASET_SPECS["ToyColorShapes"]
    with open(os.path.join(world.root, spec.dataset_dir, spec.split_filename)) as file:
        split = json.load(file)
    relpath, label, classname = split["train"][0]
    assert (relpath, label, classname) == ("red_circle/train_0000.png", 0, "red circle")
    assert os.path.isfile(os.path.join(world.root, spec.dataset_dir, "images", relpath))


def test_few_shot_base_and_new_subsets(world):
    base = DATASET_REGISTRY.get("ToyColorShapes")(dataset_cfg(world.root, "ToyColorShapes", 2, subsample="base"))
    new = DATASET_REGISTRY.get("ToyColorShapes")(dataset_cfg(world.root, "ToyColorShapes", 2, subsample="new"))
    assert base.num_classes == new.num_classes == 10
    assert len(base.train_x) == 20 and len(base.test) == 10 * MICRO.images_per_class[2]
    base_words = {word for name in base.classnames for word in name.split()}
    new_words = {word for name in new.classnames for word in name.split()}
    assert not set(base.classnames) & set(new.classnames)
    assert new_words <= base_words  # new classes are new pairings of words seen in the base classes


def test_missing_world_gives_build_hint(tmp_path):
    with pytest.raises(FileNotFoundError, match="make_toy_world.py"):
        DATASET_REGISTRY.get("ToyShapes")(dataset_cfg(str(tmp_path), "ToyShapes"))


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="resolution"):
        build_world(str(tmp_path), resolution=48, progress=False)
    with pytest.raises(ValueError, match="huge"):
        build_world(str(tmp_path), size="huge", progress=False)


def test_corpus_manifest_is_readable_and_covers_every_style(world):
    items = list(ImageTextCorpus(world.corpus_manifest))
    assert len(items) == MICRO.corpus_images
    assert all(item.caption and item.image.size == (32, 32) for item in items)
    with open(world.corpus_metadata) as file:
        header, *rows = [line.rstrip("\n").split("\t") for line in file]
    styles = [row[header.index("style")] for row in rows]
    assert Counter(styles) == {style: MICRO.corpus_images // len(STYLES) for style in STYLES}
    objects = [row[header.index("objects")] for row in rows]
    for start in range(0, len(rows), CORPUS_GROUP_SIZE):  # contrast groups: one style, different contents
        assert len(set(styles[start : start + CORPUS_GROUP_SIZE])) == 1
        assert len(set(objects[start : start + CORPUS_GROUP_SIZE])) == CORPUS_GROUP_SIZE


def test_corpus_images_are_disjoint_from_downstream_images(world):
    digests = tree_digest(world.root)
    corpus = {digest for path, digest in digests.items() if path.startswith("toy_corpus") and path.endswith(".png")}
    downstream = {digest for path, digest in digests.items() if not path.startswith("toy_corpus") and path.endswith(".png")}
    assert len(corpus) == MICRO.corpus_images
    assert not corpus & downstream


def test_class_name_words_occur_in_corpus_captions(world):
    """The zero-shot premise: every word of every class name is one the corpus captions use."""
    vocabulary = set()
    for index in range(1000):
        rng = np.random.default_rng(index)
        caption = caption_scene(sample_corpus_scene(rng, STYLES[index % len(STYLES)]), rng)
        vocabulary.update(caption.replace(".", "").split())
    for spec in DATASET_SPECS.values():
        for classname in spec.classnames:
            assert set(classname.split()) <= vocabulary, classname
