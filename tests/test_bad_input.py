"""Bad input gets one line naming the file and what was expected: split files, manifests, feature caches,
split/corpus mismatches, unreadable images."""
import json
import os
import sys

import pytest

from datasets.base import read_split
from helpers_clip import REPO, build_clip_trainer
from helpers_gram import build_meta_trainer

NUM_CLASSES = 6


def write_split(tmp_path, entries):
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    for relpath, _, _ in entries:
        (images / relpath).write_bytes(b"x")
    path = tmp_path / "split_zhou_Test.json"
    path.write_text(json.dumps({"train": entries, "val": entries[:1], "test": entries[:1]}))
    return str(path), str(images)


def good_entries():
    return [[f"{label}.jpg", label, f"class{label}"] for label in range(NUM_CLASSES)]


def one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text, text
    return text


@pytest.mark.scenario("train.py", "bad input")
@pytest.mark.parametrize("change,expected", [
    (lambda e: e.append(["x.jpg", 0, "another name"]), "label 0 has two class names"),
    (lambda e: e[5].__setitem__(1, 99), "label 5 is unused and label 99"),
    (lambda e: e[0].__setitem__(1, -1), "label 0 is unused and label -1"),
    (lambda e: e[1].__setitem__(1, 0.5), "must be an integer, got 0.5"),
    (lambda e: e[1].__setitem__(1, 1.5), "must be an integer, got 1.5"),
], ids=["two-names", "label-99", "label-minus-1", "label-0.5", "label-1.5"])
def test_split_file_with_bad_labels_is_refused(tmp_path, change, expected):
    entries = good_entries()
    change(entries)
    path, images = write_split(tmp_path, entries)
    with pytest.raises(ValueError) as error:
        read_split(path, images)
    assert one_line(error).startswith(path) and expected in str(error.value)


def test_split_file_with_contiguous_labels_reads(tmp_path):
    path, images = write_split(tmp_path, good_entries())
    train, val, test = read_split(path, images)
    assert sorted({item.label for item in train}) == list(range(NUM_CLASSES))


@pytest.mark.scenario("meta_train.py", "bad input")
def test_meta_training_refuses_a_feature_cache_with_nan_rows(gram_split, tiny_vit_checkpoint, tmp_path):
    import shutil

    import numpy as np

    from clustering import FeatureError

    split_file, _ = gram_split
    cache = str(tmp_path / "features")
    shutil.copytree(os.path.join(os.path.dirname(split_file), "features"), cache)
    shard = os.path.join(cache, "shard_00000.image.npy")
    features = np.load(shard)
    features[[3, 5]] = np.nan
    np.save(shard, features)
    with pytest.raises(FeatureError) as error:
        build_meta_trainer(split_file, tiny_vit_checkpoint, str(tmp_path / "meta"), ["TRAINER.GRAM.FEATURE_CACHE", cache])
    assert one_line(error).startswith(f"feature cache {cache}: 2 feature row(s) contain NaN")
    assert "row 3 (corpus id" in str(error.value) and "row 5 (corpus id" in str(error.value)
    assert not os.path.exists(tmp_path / "meta" / "meta_checkpoint.pth")


@pytest.fixture
def fingerprinted_split(gram_split, tmp_path):
    """gram_split's split, recording its corpus's fingerprint as cluster.py does."""
    from datasets.corpus import corpus_fingerprint
    from clustering import load_split, save_split

    split_file, manifest = gram_split
    split = load_split(split_file)
    split.settings.update(corpus=manifest, corpus_fingerprint=corpus_fingerprint(manifest),
                          feature_cache=os.path.join(os.path.dirname(split_file), "features"))
    return save_split(split, str(tmp_path / "split")), manifest


VPT_OPTS = ["TRAINER.GRAM.METHOD", "VPT", "TRAINER.VPT.PROMPT_DEPTH_VISION", 2, "TRAINER.VPT.N_CTX_VISION", 2]


@pytest.mark.scenario("meta_train.py", "bad input")
def test_meta_training_refuses_pixels_from_another_corpus(fingerprinted_split, tiny_vit_checkpoint, tmp_path):
    from clustering import SplitFileError

    split_file, manifest = fingerprinted_split
    other = os.path.join(os.path.dirname(manifest), "other.tsv")  # same ids, other captions: other images
    with open(manifest) as source, open(other, "w") as target:
        target.write(source.read().replace("picture", "photo"))
    with pytest.raises(SplitFileError) as error:
        build_meta_trainer(split_file, tiny_vit_checkpoint, str(tmp_path / "meta"),
                           VPT_OPTS + ["TRAINER.GRAM.CORPUS", other])
    assert one_line(error).startswith(f"corpus {other} (fingerprint") and manifest in str(error.value)
    trainer = build_meta_trainer(split_file, tiny_vit_checkpoint, str(tmp_path / "meta"),
                                 VPT_OPTS + ["TRAINER.GRAM.CORPUS", manifest])
    pixels = trainer.pixels.dataset  # streamed: every image of the split is found in the right corpus
    assert len(pixels) == trainer.split.num_pairs and pixels.locator.unlocated == 0


@pytest.mark.scenario("train.py", "bad input")
def test_prompts_trained_with_another_clip_are_refused(dataset_root, tiny_rn_checkpoint, tiny_vit_checkpoint,
                                                       tmp_path):
    from trainers.backbone.clip_loader import checkpoint_fingerprint

    config, opts = "configs/trainers/CoOp/tiny_ep10.yaml", ["OPTIM.MAX_EPOCH", 1, "TEST.NO_TEST", True]
    resnet_run = build_clip_trainer("CoOp", config, dataset_root, str(tmp_path / "rn"), tiny_rn_checkpoint, opts)
    resnet_run.train()
    vit_run = build_clip_trainer("CoOp", config, dataset_root, str(tmp_path / "vit"), tiny_vit_checkpoint, opts)
    assert vit_run.model.prompt_learner.ctx.shape == resnet_run.model.prompt_learner.ctx.shape  # would load silently
    with pytest.raises(ValueError) as error:
        vit_run.load_model(str(tmp_path / "rn"), epoch=1)
    message = one_line(error)
    assert f"was trained with CLIP {tiny_rn_checkpoint} (fingerprint {checkpoint_fingerprint(tiny_rn_checkpoint)})" \
        in message and f"this run's CLIP is {tiny_vit_checkpoint} (fingerprint" in message
    resnet_run.load_model(str(tmp_path / "rn"), epoch=1)  # the CLIP it was trained with loads it


@pytest.fixture(scope="module")
def damaged_textures(tmp_path_factory):
    """A DTD fixture with one training JPEG cut in half."""
    from datasets.fixtures import build_fixture

    root = str(tmp_path_factory.mktemp("damaged"))
    fixture = build_fixture("DescribableTextures", root, num_classes=2, images_per_class=6)
    with open(os.path.join(fixture.dataset_dir, "split_zhou_DescribableTextures.json")) as handle:
        relpath = json.load(handle)["train"][0][0]
    broken = os.path.join(fixture.dataset_dir, "images", relpath)
    with open(broken, "rb") as handle:
        data = handle.read()
    with open(broken, "wb") as handle:
        handle.write(data[: len(data) // 3])
    return root, broken


def train_textures(root, output, backbone, *opts):
    import train as train_py

    argv = ["--root", root, "--trainer", "CoOp", "--config-file", "configs/trainers/CoOp/tiny_ep10.yaml",
            "--output-dir", output, "--seed", "1", "DATASET.NAME", "DescribableTextures", "MODEL.BACKBONE.NAME",
            backbone, "OPTIM.MAX_EPOCH", "1", *opts]
    train_py.main(train_py.build_parser().parse_args(argv), env_info=False)


@pytest.mark.scenario("train.py", "bad input")
@pytest.mark.parametrize("workers", ["0", "1"])
def test_unreadable_training_image_is_one_line_naming_it(damaged_textures, tiny_vit_checkpoint, tmp_path, monkeypatch,
                                                         workers):
    from tools.cli import UsageError

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    root, broken = damaged_textures
    with pytest.raises(UsageError) as error:
        train_textures(root, str(tmp_path / "run"), tiny_vit_checkpoint, "DATALOADER.NUM_WORKERS", workers)
    assert one_line(error).startswith(f"Cannot read image {broken}: ")
    assert "DATASET.SKIP_UNREADABLE_IMAGES True" in str(error.value)


def test_unreadable_images_are_skipped_and_counted_on_request(damaged_textures, tiny_vit_checkpoint, tmp_path,
                                                              monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    root, broken = damaged_textures
    train_textures(root, str(tmp_path / "run"), tiny_vit_checkpoint, "DATASET.SKIP_UNREADABLE_IMAGES", "True")
    out = capsys.readouterr().out
    assert "Skipped 1 unreadable image(s) (DATASET.SKIP_UNREADABLE_IMAGES; train 1, val 0, test 0): " + broken in out
    assert os.path.isfile(tmp_path / "run" / "results.json")
