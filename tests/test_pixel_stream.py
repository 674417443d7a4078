"""Streaming corpus pixels for meta-training: the rows asked for, the tensors of a direct decode, bad images
skipped without shifting rows, a tar index cached once, and memory that does not grow with the corpus."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from datasets import corpus_index
from datasets.corpus import ImageTextCorpus
from datasets.fixtures import build_corpus_fixture
from helpers_clip import REPO, entry_point_env
from trainers.backbone.transforms import clip_preprocess
from trainers.gram.pixel_stream import CorpusPixels, PixelStream

RESOLUTION = 16


def _direct(source):
    """id -> preprocessed image, decoding the corpus front to back (the reader skips bad images)."""
    transform = clip_preprocess(RESOLUTION)
    return {item.id: transform(item.image) for item in ImageTextCorpus(source)}


@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "tar"])
def test_stream_yields_the_rows_asked_for_with_the_tensors_of_a_direct_decode(tmp_path, fmt):
    corpus = build_corpus_fixture(str(tmp_path / fmt), n=24, fmt=fmt, n_corrupt=2, n_missing=2)
    ids = list(reversed(corpus.ids))  # split order differs from corpus order
    stream = PixelStream(CorpusPixels(corpus.source, ids, RESOLUTION), workers=2, prefetch=2)
    row_lists = [np.random.default_rng(seed).choice(len(ids), 6, replace=False) for seed in range(8)]
    expected = _direct(corpus.source)
    bad = set(corpus.corrupt_ids + corpus.missing_ids)
    for rows, batch in zip(row_lists, stream.stream(row_lists), strict=True):
        np.testing.assert_array_equal(batch.requested, rows)
        np.testing.assert_array_equal(batch.rows, [row for row in rows if ids[row] not in bad])
        for position, row in enumerate(batch.rows):
            torch.testing.assert_close(batch.images[position], expected[ids[row]], rtol=0, atol=0)
    asked = {ids[row] for rows in row_lists for row in rows}
    assert stream.skipped == sum(ids[row] in bad for rows in row_lists for row in rows) > 0
    assert {ids[row] for row in stream.unreadable_rows} == asked & bad
    assert "missing or unreadable while streaming" in stream.report()


def test_tar_index_is_built_once_and_cached_beside_the_shards(tmp_path, monkeypatch):
    corpus = build_corpus_fixture(str(tmp_path / "tar"), n=20, fmt="tar", shard_size=8)
    shards = ImageTextCorpus(corpus.source).shards
    first = CorpusPixels(corpus.source, corpus.ids, RESOLUTION)
    assert all(os.path.isfile(corpus_index.shard_index_path(shard)) for shard in shards)

    def no_scan(shard):
        raise AssertionError(f"{shard} was scanned again")

    monkeypatch.setattr(corpus_index, "_scan_shard", no_scan)
    again = CorpusPixels(corpus.source, corpus.ids, RESOLUTION)
    np.testing.assert_array_equal(again.locator.where, first.locator.where)
    torch.testing.assert_close(again[5][1], _direct(corpus.source)[corpus.ids[5]])


# Writes an n-pair corpus of tiny PNGs, streams 40 tasks of 32 rows through one worker, prints peak RSS (KiB).
STREAM_RSS = """
import os, resource, sys
import numpy as np
from PIL import Image
from trainers.gram.pixel_stream import CorpusPixels, PixelStream

folder, n = sys.argv[1], int(sys.argv[2])
os.makedirs(os.path.join(folder, "images"), exist_ok=True)
Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(os.path.join(folder, "pixel.png"))
data = open(os.path.join(folder, "pixel.png"), "rb").read()
with open(os.path.join(folder, "corpus.tsv"), "w") as manifest:
    for row in range(n):
        with open(os.path.join(folder, "images", f"{row}.png"), "wb") as image:
            image.write(data)
        manifest.write(f"images/{row}.png\\ta caption {row}\\n")
ids = [f"images/{row}.png" for row in range(n)]
stream = PixelStream(CorpusPixels(os.path.join(folder, "corpus.tsv"), ids, 16), workers=1, prefetch=2)
rng = np.random.default_rng(0)
for batch in stream.stream([rng.choice(n, 32, replace=False) for _ in range(40)]):
    assert len(batch.rows) == 32
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _peak_rss(folder, pairs):
    result = subprocess.run([sys.executable, "-c", STREAM_RSS, str(folder), str(pairs)], cwd=REPO,
                            env=entry_point_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return [int(value) for value in result.stdout.split()]


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_corpus(tmp_path):
    small, large = _peak_rss(tmp_path / "small", 2_000), _peak_rss(tmp_path / "large", 20_000)
    assert large[0] <= 1.05 * small[0], (small, large)  # this process: the index of 10x the rows is a few MB
    assert large[1] <= 1.05 * small[1], (small, large)  # the worker


def test_vpt_meta_training_streams_pixels_and_reports_images_gone_since_clustering(gram_split, tiny_vit_checkpoint,
                                                                                   tmp_path, capsys):
    from dassl.utils import set_random_seed

    from tools.cli import default_cfg
    from trainers.gram.meta_trainer import MetaTrainer

    split_file, manifest = gram_split
    corpus = tmp_path / "corpus"
    shutil.copytree(os.path.dirname(manifest), corpus, ignore=shutil.ignore_patterns("clusters"))
    images = sorted(os.listdir(corpus / "images"))
    for name in images[::3]:  # a third of the images disappear after clustering
        os.unlink(corpus / "images" / name)
    cfg = default_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs/gram/tiny_vpt.yaml"))
    cfg.merge_from_list(["MODEL.BACKBONE.NAME", tiny_vit_checkpoint, "TRAINER.GRAM.SPLIT_FILE", split_file,
                         "TRAINER.GRAM.CORPUS", str(corpus / os.path.basename(manifest)),
                         "OUTPUT_DIR", str(tmp_path / "meta"), "SEED", 1, "OPTIM.MAX_EPOCH", 1,
                         "TRAINER.GRAM.ITERS_PER_EPOCH", 2, "TRAINER.GRAM.VAL_TASKS", 1])
    cfg.freeze()
    set_random_seed(1)
    meta = MetaTrainer(cfg)
    meta.train()
    out = capsys.readouterr().out
    assert os.path.isfile(tmp_path / "meta" / "meta_checkpoint.pth")
    gone = {f"images/{name}" for name in images[::3]}
    assert meta.pixels.unreadable_rows and {meta.encoded.ids[row] for row in meta.pixels.unreadable_rows} <= gone
    assert f"{len(meta.pixels.unreadable_rows)} corpus image(s) missing or unreadable while streaming" in out
