"""Split files, few-shot sampling and its cache, base/new classes, and the errors for bad input."""
import json
import os
import pickle
import random
import stat

import pytest
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum

import datasets  # noqa: F401  (registers the datasets)
from datasets import base
from datasets.fixtures import build_fixture, dataset_cfg
from fileio.atomic import write_atomically, write_text_atomically


def load(root, name, **kwargs):
    return DATASET_REGISTRY.get(name)(dataset_cfg(str(root), name, **kwargs))


def impaths(items):
    return [item.impath for item in items]


@pytest.fixture
def pets(tmp_path):
    """OxfordPets with 6 classes of 20 images (train 10, val 4, test 6 per class)."""
    build_fixture("OxfordPets", str(tmp_path), num_classes=6, images_per_class=20)
    return tmp_path


def test_fewshot_sampling_is_deterministic_per_seed(tmp_path):
    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        build_fixture("OxfordPets", str(root), num_classes=6, images_per_class=20)
    random.seed(12345)  # the draw must not depend on the global state
    first = load(roots[0], "OxfordPets", num_shots=4, seed=1)
    random.seed(999)
    again = load(roots[1], "OxfordPets", num_shots=4, seed=1)
    other = load(roots[0], "OxfordPets", num_shots=4, seed=2)
    relative = [os.path.relpath(p, roots[0]) for p in impaths(first.train_x)]
    assert relative == [os.path.relpath(p, roots[1]) for p in impaths(again.train_x)]
    assert set(impaths(other.train_x)) != set(impaths(first.train_x))
    for dataset in (first, other):
        counts = [sum(item.label == label for item in dataset.train_x) for label in range(6)]
        assert counts == [4] * 6
        assert len(dataset.val) == 6 * 4  # min(shots, 4) per class
        assert len(dataset.test) == 6 * 6  # the test set is never subsampled


def test_fewshot_draw_restores_the_global_random_state(pets):
    random.seed(7)
    expected = random.random()
    random.seed(7)
    load(pets, "OxfordPets", num_shots=2, seed=1)
    assert random.random() == expected


def test_fewshot_draw_matches_coops_seeded_sampling(pets):
    """Same images as CoOp: ``random.seed(SEED)`` then Dassl's draw, train first, then val."""
    full = load(pets, "OxfordPets")
    random.seed(3)
    expected_train = DatasetBase.generate_fewshot_dataset(full, full.train_x, num_shots=2)
    dataset = load(pets, "OxfordPets", num_shots=2, seed=3)
    assert impaths(dataset.train_x) == impaths(expected_train)


def test_fewshot_cache_is_written_and_reused(pets, monkeypatch):
    first = load(pets, "OxfordPets", num_shots=2, seed=1)
    cache = pets / "oxford_pets" / "split_fewshot" / "shot_2-seed_1.pkl"
    with open(cache, "rb") as file:
        cached = pickle.load(file)
    assert impaths(cached["train"]) == impaths(first.train_x) and impaths(cached["val"]) == impaths(first.val)
    stamp = cache.stat().st_mtime_ns

    def must_not_sample(*args, **kwargs):
        raise AssertionError("few-shot split drawn again although it is cached")

    monkeypatch.setattr(DatasetBase, "generate_fewshot_dataset", must_not_sample)
    second = load(pets, "OxfordPets", num_shots=2, seed=1)
    assert impaths(second.train_x) == impaths(first.train_x)
    assert cache.stat().st_mtime_ns == stamp


def test_stale_or_broken_fewshot_cache_is_rebuilt(pets, capsys):
    first = load(pets, "OxfordPets", num_shots=2, seed=1)
    cache = pets / "oxford_pets" / "split_fewshot" / "shot_2-seed_1.pkl"
    stranger = Datum(impath=str(cache), label=0, classname="not in the split")
    with open(cache, "wb") as file:
        pickle.dump({"train": [stranger], "val": []}, file)
    capsys.readouterr()
    rebuilt = load(pets, "OxfordPets", num_shots=2, seed=1)
    assert "outside the current split; rebuilding" in capsys.readouterr().out
    assert impaths(rebuilt.train_x) == impaths(first.train_x)
    cache.write_bytes(b"not a pickle")
    assert impaths(load(pets, "OxfordPets", num_shots=2, seed=1).train_x) == impaths(first.train_x)
    assert "could not read few-shot cache" in capsys.readouterr().out


def test_more_shots_than_images_uses_all_and_warns(pets, capsys):
    dataset = load(pets, "OxfordPets", num_shots=16, seed=1)
    assert len(dataset.train_x) == 6 * 10
    out = capsys.readouterr().out
    assert "Warning: OxfordPets: 6 of 6 classes have fewer than 16 training images; all their images are used" in out
    assert "'abyssinian' (10)" in out


def test_imagenet_fewshot_cache_holds_train_only(tmp_path):
    build_fixture("ImageNet", str(tmp_path), num_classes=3, images_per_class=6)
    dataset = load(tmp_path, "ImageNet", num_shots=2, seed=1)
    with open(tmp_path / "imagenet" / "split_fewshot" / "shot_2-seed_1.pkl", "rb") as file:
        assert sorted(pickle.load(file)) == ["train"]
    assert len(dataset.train_x) == 6 and dataset.val is dataset.test and len(dataset.test) == 9


@pytest.mark.parametrize("subsample", ["base", "new"])
def test_base_and_new_are_the_lower_and_upper_half_relabelled(tmp_path, subsample):
    fixture = build_fixture("DescribableTextures", str(tmp_path), num_classes=5, images_per_class=10)
    dataset = load(tmp_path, "DescribableTextures", num_shots=2, subsample=subsample)
    kept = fixture.classnames[:3] if subsample == "base" else fixture.classnames[3:]  # ceil(5 / 2) = 3
    assert dataset.classnames == kept
    for split in (dataset.train_x, dataset.val, dataset.test):
        assert sorted({item.label for item in split}) == list(range(len(kept)))
        assert all(kept[item.label] == item.classname for item in split)


def test_subsample_classes_follows_the_labels_of_the_first_source():
    def items(labels):
        return [Datum(label=label, classname=f"c{label}") for label in labels]

    train, test = items([7, 3, 5, 9]), items([3, 5, 7, 9, 11])
    base_train, base_test = base.subsample_classes(train, test, subsample="base")
    assert [(d.label, d.classname) for d in base_test] == [(0, "c3"), (1, "c5")]
    new_train, new_test = base.subsample_classes(train, test, subsample="new")
    assert sorted((d.label, d.classname) for d in new_train) == [(0, "c7"), (1, "c9")]
    assert base.subsample_classes(train, subsample="all")[0] is train
    with pytest.raises(ValueError, match="SUBSAMPLE_CLASSES must be one of"):
        base.subsample_classes(train, subsample="half")


def test_split_trainval_holds_out_a_fifth_of_every_class():
    trainval = [Datum(label=label, classname=str(label)) for label in range(3) for _ in range(10)]
    random.seed(0)
    train, val = base.split_trainval(trainval)
    assert len(train) == 24 and len(val) == 6
    assert sorted(d.label for d in val) == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="too few to hold out"):
        base.split_trainval([Datum(label=0, classname="lonely")])


def test_save_and_read_split_round_trip_in_coops_format(tmp_path):
    image_dir = tmp_path / "images"
    (image_dir / "cat").mkdir(parents=True)
    paths = []
    for k in range(3):
        (image_dir / "cat" / f"{k}.jpg").write_bytes(b"x")
        paths.append(str(image_dir / "cat" / f"{k}.jpg"))
    train, val, test = ([Datum(impath=p, label=0, classname="cat")] for p in paths)
    split_path = str(tmp_path / "split_zhou_Test.json")
    base.save_split(train, val, test, split_path, str(image_dir))
    assert json.load(open(split_path)) == {
        "train": [["cat/0.jpg", 0, "cat"]], "val": [["cat/1.jpg", 0, "cat"]], "test": [["cat/2.jpg", 0, "cat"]]
    }
    assert [impaths(s) for s in base.read_split(split_path, str(image_dir))] == [[p] for p in paths]
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_split_file_with_an_unknown_image_names_the_first_bad_entry(pets):
    split_path = pets / "oxford_pets" / "split_zhou_OxfordPets.json"
    split = json.load(open(split_path))
    split["val"][1][0] = "no_such_cat_1.jpg"
    split["test"][0][0] = "no_such_cat_2.jpg"
    split_path.write_text(json.dumps(split))
    with pytest.raises(FileNotFoundError, match=r"split_zhou_OxfordPets.json: val\[1\] \('no_such_cat_1.jpg'\)"):
        load(pets, "OxfordPets")


def test_malformed_split_file_is_named(pets):
    split_path = pets / "oxford_pets" / "split_zhou_OxfordPets.json"
    split_path.write_text('{"train": [["a.jpg", 0]], "val": [], "test": []}')
    with pytest.raises(ValueError, match=r"train\[0\] = \['a.jpg', 0\] is not \[image path, label, class name\]"):
        load(pets, "OxfordPets")
    split_path.write_text("{not json")
    with pytest.raises(ValueError, match="split_zhou_OxfordPets.json: not valid JSON"):
        load(pets, "OxfordPets")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("OxfordPets", "OxfordPets: expected images in {root}/oxford_pets/images (see CoOp's DATASETS.md"),
        ("Caltech101", "Caltech101: expected images in {root}/caltech-101/101_ObjectCategories"),
        ("ImageNet", "ImageNet: expected images in {root}/imagenet/images"),
        ("ImageNetA", "ImageNetA: expected images in {root}/imagenet-adversarial/imagenet-a"),
        ("StanfordCars", "StanfordCars: expected images in {root}/stanford_cars ("),
    ],
)
def test_missing_dataset_folder_names_the_expected_path(tmp_path, name, expected):
    with pytest.raises(FileNotFoundError) as error:
        load(tmp_path, name)
    assert expected.format(root=tmp_path) in str(error.value)
    assert "layout:" in str(error.value)


def test_missing_split_file_and_original_files_are_named(tmp_path):
    build_fixture("OxfordPets", str(tmp_path), num_classes=3, images_per_class=4, with_split=False)
    os.remove(tmp_path / "oxford_pets" / "annotations" / "test.txt")
    with pytest.raises(FileNotFoundError, match=r"OxfordPets: expected .*oxford_pets/annotations/test.txt"):
        load(tmp_path, "OxfordPets")


def test_aircraft_variant_list_with_an_unknown_image_names_the_line(tmp_path):
    build_fixture("FGVCAircraft", str(tmp_path), num_classes=3, images_per_class=4)
    variant_file = tmp_path / "fgvc_aircraft" / "images_variant_test.txt"
    variant_file.write_text(variant_file.read_text() + "9999999 707-320\n")
    with pytest.raises(FileNotFoundError, match=r"images_variant_test.txt:4: image .*9999999.jpg does not exist"):
        load(tmp_path, "FGVCAircraft")


def test_imagenetv2_missing_label_folder_is_named(tmp_path):
    build_fixture("ImageNetV2", str(tmp_path), num_classes=3, images_per_class=4)
    image_dir = tmp_path / "imagenetv2" / "imagenetv2-matched-frequency-format-val"
    for name in os.listdir(image_dir / "1"):
        os.remove(image_dir / "1" / name)
    os.rmdir(image_dir / "1")
    with pytest.raises(FileNotFoundError, match=r"format-val/1 is missing"):
        load(tmp_path, "ImageNetV2")


def test_imagenet_raw_ilsvrc_val_layout_is_refused_with_the_expected_one(tmp_path):
    """ILSVRC2012's val JPEGs directly in images/val/ (no class folders): one line naming the folder."""
    build_fixture("ImageNet", str(tmp_path), num_classes=3, images_per_class=4)
    val_dir = tmp_path / "imagenet" / "images" / "val"
    for wnid in os.listdir(val_dir):
        for name in os.listdir(val_dir / wnid):
            os.replace(val_dir / wnid / name, val_dir / name)
        os.rmdir(val_dir / wnid)
    with pytest.raises(ValueError) as error:
        load(tmp_path, "ImageNet")
    message = str(error.value)
    assert "\n" not in message
    assert f"{val_dir} has no class folders but 6 files directly in it (ILSVRC2012's val layout)" in message
    assert f"expected {val_dir}/<wnid>/<image>.JPEG" in message


def test_corrupt_image_at_train_time_names_the_file(tmp_path):
    from dassl.utils import read_image

    build_fixture("Food101", str(tmp_path), num_classes=2, images_per_class=4)
    dataset = load(tmp_path, "Food101")
    broken = dataset.train_x[0].impath
    with open(broken, "wb") as file:
        file.write(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(OSError, match=broken):
        read_image(broken)


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "split.json"
    target.write_text("old")

    def failing_write(file):
        file.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(str(target), failing_write)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["split.json"]
    write_text_atomically(str(target), "new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["split.json"]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644


def test_dataset_without_split_file_or_builder_says_which_file_to_download(tmp_path):
    class Minimal(base.CoOpStyleDataset):
        dataset_dir = "minimal"
        split_filename = "split_zhou_Minimal.json"

    os.makedirs(tmp_path / "minimal" / "images")
    with pytest.raises(FileNotFoundError, match=r"split file .*minimal/split_zhou_Minimal.json not found; download"):
        Minimal(dataset_cfg(str(tmp_path), "Minimal"))
