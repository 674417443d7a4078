"""Bad input gets one line naming the file and what was expected: split files, manifests, feature caches,
split/corpus mismatches, unreadable images."""
import json
import os

import pytest

from datasets.base import read_split

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
