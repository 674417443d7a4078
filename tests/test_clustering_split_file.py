"""The split file: round trip, versioning, CLIP fingerprint check, integrity and atomic writes."""
import json
import os

import numpy as np
import pytest

from clustering import ClusteringSettings, SplitFileError, build_split, load_split, save_split
from clustering import split_file
from testing.planted import hierarchical_pairs


@pytest.fixture(scope="module")
def split():
    image, text, _ = hierarchical_pairs(600, 16, branching=(2, 3), seed=0)
    ids = [f"img_{row:04d}.jpg" for row in range(600)]
    return build_split(image, text, ids, ClusteringSettings(k=24, levels=(2, 6)), clip_fingerprint="abc123")


def test_split_round_trips(split, tmp_path):
    save_split(split, str(tmp_path))
    loaded = load_split(str(tmp_path), expected_clip_fingerprint="abc123")
    assert (loaded.method, loaded.clip_fingerprint, loaded.corpus_ids) == ("cmhc", "abc123", split.corpus_ids)
    assert loaded.settings == split.settings
    assert len(loaded.levels) == len(split.levels)
    for saved, read in zip(split.levels, loaded.levels):
        assert read.num_clusters == saved.num_clusters
        for name in ("assignment", "sizes", "image_prototypes", "text_prototypes", "joint_prototypes", "complexity"):
            np.testing.assert_array_equal(getattr(read, name), getattr(saved, name), err_msg=name)
        assert (read.parent is None) == (saved.parent is None)
        if saved.parent is not None:
            np.testing.assert_array_equal(read.parent, saved.parent)


def test_header_records_what_was_done(split, tmp_path):
    path = save_split(split, str(tmp_path))
    header = json.loads(open(path).read())
    assert header["format"] == "gram-cluster-split" and header["version"] == 1
    assert header["num_pairs"] == 600 and header["settings"]["levels"] == [2, 6]
    assert [level["num_clusters"] for level in header["levels"]] == [2, 6]
    assert sum(header["levels"][1]["sizes"]) == 600


def test_split_from_another_clip_is_refused(split, tmp_path):
    save_split(split, str(tmp_path))
    expected = f"split file {tmp_path / 'split.json'} was made with CLIP abc123, but the model is fff999"
    with pytest.raises(SplitFileError, match=expected):
        load_split(str(tmp_path / "split.json"), expected_clip_fingerprint="fff999")


def test_other_format_version_is_refused(split, tmp_path):
    path = save_split(split, str(tmp_path))
    header = json.loads(open(path).read())
    header["version"] = 99
    open(path, "w").write(json.dumps(header))
    with pytest.raises(SplitFileError, match="format version 99"):
        load_split(path)


def test_tampered_arrays_are_detected(split, tmp_path):
    path = save_split(split, str(tmp_path))
    arrays = os.path.join(tmp_path, json.loads(open(path).read())["arrays"]["file"])
    with open(arrays, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(SplitFileError, match="does not match the sha256"):
        load_split(path)


def test_missing_split_names_the_file(tmp_path):
    with pytest.raises(SplitFileError, match=f"split file not found: {tmp_path / 'split.json'}"):
        load_split(str(tmp_path))


def test_failed_rewrite_keeps_previous_split_loadable(split, tmp_path, monkeypatch):
    save_split(split, str(tmp_path))
    before = sorted(os.listdir(tmp_path))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(split_file, "write_json_atomic", crash)
    changed = build_split(np.random.default_rng(1).standard_normal((600, 16)).astype(np.float32),
                          np.random.default_rng(2).standard_normal((600, 16)).astype(np.float32),
                          split.corpus_ids, ClusteringSettings(k=24, levels=(2, 6)), "abc123")
    with pytest.raises(OSError, match="disk full"):
        save_split(changed, str(tmp_path))
    loaded = load_split(str(tmp_path))
    np.testing.assert_array_equal(loaded.levels[1].assignment, split.levels[1].assignment)
    monkeypatch.undo()
    save_split(changed, str(tmp_path))
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")]
    assert len([name for name in os.listdir(tmp_path) if name.endswith(".npz")]) == 1
    assert sorted(os.listdir(tmp_path)) != before


def test_corpus_check_refuses_other_ids(split):
    split.check_corpus_ids(list(split.corpus_ids))
    with pytest.raises(SplitFileError, match="is not the corpus this split was made from"):
        split.check_corpus_ids(split.corpus_ids[1:] + split.corpus_ids[:1], source="corpus.tsv")
