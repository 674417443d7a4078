"""The image-text corpus reader: formats, streaming, skipped images and their counts, ids, subsampling."""
import io
import json
import logging
import os
import tarfile
import tracemalloc

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from datasets.corpus import CorpusDataset, ImageTextCorpus, keep_fraction
from datasets.fixtures import build_corpus_fixture


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl", "tar"])
def test_reader_skips_corrupt_and_missing_images_and_counts_them(tmp_path, fmt, caplog):
    fixture = build_corpus_fixture(str(tmp_path), n=12, fmt=fmt, n_corrupt=2, n_missing=1, shard_size=5)
    corpus = ImageTextCorpus(fixture.source)
    with caplog.at_level(logging.INFO, logger="datasets.corpus"):
        items = list(corpus)
    broken = set(fixture.corrupt_ids) | set(fixture.missing_ids)
    assert [item.id for item in items] == [i for i in fixture.ids if i not in broken]
    assert all(isinstance(item.image, Image.Image) and item.image.mode == "RGB" for item in items)
    assert all(item.caption.startswith("a ") for item in items)
    stats = corpus.stats
    assert (stats.seen, stats.yielded, stats.missing, stats.corrupt) == (12, 9, 1, 2)
    assert "seen=12, subsampled_out=0, missing=1, corrupt=2, yielded=9" in caplog.text
    for broken_id in broken:
        assert broken_id in caplog.text


def test_csv_captions_keep_their_quoted_commas(tmp_path):
    fixture = build_corpus_fixture(str(tmp_path), n=2, fmt="csv")
    assert next(iter(ImageTextCorpus(fixture.source))).caption.endswith(", photographed")


def test_headerless_tsv_is_image_then_caption(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.jpg")
    manifest = tmp_path / "pairs.tsv"
    manifest.write_text("a.jpg\ta black square\n")
    (item,) = ImageTextCorpus(str(manifest))
    assert (item.id, item.caption, item.image.size) == ("a.jpg", "a black square", (8, 8))


def test_reading_the_first_item_does_not_read_the_whole_manifest(tmp_path):
    fixture = build_corpus_fixture(str(tmp_path), n=1, fmt="jsonl")
    line = open(fixture.source).readline()
    with open(fixture.source, "a") as file:
        file.writelines(line.replace('"000000"', f'"{index:06d}"') for index in range(1, 50_000))
        file.write("{ this line is not JSON\n")
    assert os.path.getsize(fixture.source) > 3_000_000
    tracemalloc.start()
    first = next(iter(ImageTextCorpus(fixture.source)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert first.id == "000000"
    assert peak < 1_000_000  # the manifest is >3 MB; a streaming reader holds one line
    with pytest.raises(ValueError, match=r"corpus.jsonl:50001: not valid JSON"):
        for _ in ImageTextCorpus(fixture.source, subsample=1e-6):
            pass


def test_reading_the_first_item_does_not_open_later_shards(tmp_path):
    fixture = build_corpus_fixture(str(tmp_path), n=4, fmt="tar", shard_size=2)
    with open(os.path.join(fixture.source, "0001.tar"), "wb") as file:
        file.write(b"not a tar file at all" * 100)
    corpus = ImageTextCorpus(fixture.source)
    assert next(iter(corpus)).id == "000000"
    items = list(corpus)
    assert [item.id for item in items] == ["000000", "000001"] and corpus.stats.bad_shards == 1


def test_duplicate_ids_are_refused_with_their_place(tmp_path):
    fixture = build_corpus_fixture(str(tmp_path), n=3, fmt="tsv")
    lines = open(fixture.source).read().splitlines()
    with open(fixture.source, "a") as file:
        file.write(lines[2] + "\n")
    with pytest.raises(ValueError, match=r"duplicate id 'images/000001.jpg' at .*corpus.tsv:5"):
        list(ImageTextCorpus(fixture.source))


def test_duplicate_keys_across_tar_shards_are_refused(tmp_path):
    fixture = build_corpus_fixture(str(tmp_path), n=4, fmt="tar", shard_size=2)
    with tarfile.open(os.path.join(fixture.source, "0002.tar"), "w") as tar:
        info = tarfile.TarInfo("000001.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"dup"))
    with pytest.raises(ValueError, match=r"duplicate id '000001' at .*0002.tar:000001"):
        list(ImageTextCorpus(fixture.source))


def test_malformed_manifest_lines_are_named(tmp_path):
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text(json.dumps({"image": "a.jpg", "caption": "ok"}) + "\n" + json.dumps({"img": "b.jpg"}) + "\n")
    with pytest.raises(ValueError, match=r"pairs.jsonl:2: expected an object with an image field"):
        list(ImageTextCorpus(str(manifest)))
    table = tmp_path / "pairs.tsv"
    table.write_text("image_path\tcaption\nonly-one-column\n")
    with pytest.raises(ValueError, match=r"pairs.tsv:2: expected columns \(image path, caption\)"):
        list(ImageTextCorpus(str(table)))


def test_unknown_source_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageTextCorpus(str(tmp_path / "nothing.tsv"))
    (tmp_path / "pairs.parquet").write_text("")
    with pytest.raises(ValueError, match="expected a .tsv, .csv or .jsonl manifest"):
        ImageTextCorpus(str(tmp_path / "pairs.parquet"))
    with pytest.raises(FileNotFoundError, match="holds no .tar shards"):
        ImageTextCorpus(str(tmp_path))


def test_subsample_is_deterministic_nested_and_near_its_fraction(tmp_path):
    fixture = build_corpus_fixture(str(tmp_path), n=200, fmt="jsonl", image_size=4)
    def kept(fraction, seed=0):
        return [item.id for item in ImageTextCorpus(fixture.source, subsample=fraction, seed=seed)]

    half, quarter = kept(0.5), kept(0.25)
    assert kept(0.5) == half
    assert set(quarter) <= set(half)
    assert 70 <= len(half) <= 130 and 25 <= len(quarter) <= 75
    assert kept(0.5, seed=1) != half
    corpus = ImageTextCorpus(fixture.source, subsample=0.5)
    list(corpus)
    assert corpus.stats.subsampled_out == 200 - len(half)
    assert all(keep_fraction(i, 0.5, 0) == (i in set(half)) for i in fixture.ids)
    with pytest.raises(ValueError, match=r"subsample must be a fraction in \(0, 1\]"):
        ImageTextCorpus(fixture.source, subsample=2)


@pytest.mark.parametrize("fmt, shard_size", [("tsv", 8), ("tar", 3), ("tar", 20)])
def test_dataloader_workers_each_read_their_share_once(tmp_path, fmt, shard_size):
    fixture = build_corpus_fixture(str(tmp_path), n=10, fmt=fmt, n_corrupt=1, shard_size=shard_size)
    to_tensor = lambda image: torch.from_numpy(__import__("numpy").asarray(image).copy()).permute(2, 0, 1)
    dataset = CorpusDataset(fixture.source, transform=to_tensor)
    loader = DataLoader(dataset, batch_size=4, num_workers=2)
    ids = [i for batch in loader for i in batch["id"]]
    assert sorted(ids) == sorted(set(fixture.ids) - set(fixture.corrupt_ids))
    batch = next(iter(DataLoader(dataset, batch_size=3)))
    assert sorted(batch) == ["caption", "id", "img"] and batch["img"].shape == (3, 3, 16, 16)
    assert len(batch["caption"]) == 3
