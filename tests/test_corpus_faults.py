"""cluster.py on damaged corpora: empty captions, a truncated tar shard, a manifest that is not UTF-8."""
import logging
import os
import tarfile

import pytest

import cluster
from datasets.corpus import ImageTextCorpus
from datasets.fixtures import build_corpus_fixture
from testing.tiny_clip import build_tiny_clip, save_clip_state_dict
from clustering import load_split

N, SHARD = 24, 8


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("clip") / "tiny_clip.pt")
    return save_clip_state_dict(build_tiny_clip(embed_dim=64, image_resolution=32), path)


def run_cluster(source, checkpoint, out):
    return cluster.main(["--corpus", source, "--clip", checkpoint, "--out", str(out), "--k", "4", "--levels", "2",
                         "--batch-size", "8", "--shard-size", "8"])


@pytest.mark.scenario("cluster.py", "bad input")
def test_empty_captions_are_skipped_and_counted(tmp_path, checkpoint, capsys, caplog):
    corpus = build_corpus_fixture(str(tmp_path / "corpus"), n=N, fmt="tsv")
    lines = open(corpus.source).read().splitlines()
    empty = set(range(1, len(lines), 3))  # a third of the entries (line 0 is the header)
    with open(corpus.source, "w") as handle:
        handle.write("\n".join(line.split("\t")[0] + "\t " if index in empty else line
                               for index, line in enumerate(lines)) + "\n")
    with caplog.at_level(logging.WARNING, logger="datasets.corpus"):
        assert run_cluster(corpus.source, checkpoint, tmp_path / "out") == 0
    assert f"corpus: skipped {len(empty)} empty captions" in capsys.readouterr().out
    assert "empty caption for 'images/000000.jpg'" in caplog.text
    split = load_split(str(tmp_path / "out"))
    assert split.num_pairs == N - len(empty)
    assert not {corpus.ids[index - 1] for index in empty} & set(split.corpus_ids)


def truncate(path, keep_bytes):
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:keep_bytes])


def member_offsets(path):
    with tarfile.open(path) as tar:
        return [member.offset for member in tar.getmembers()]


@pytest.mark.scenario("cluster.py", "fault")
@pytest.mark.parametrize("cut", ["inside-a-member", "between-members"])
def test_truncated_shard_is_reported_and_its_readable_part_used(tmp_path, checkpoint, capsys, caplog, cut):
    corpus = build_corpus_fixture(str(tmp_path / "corpus"), n=N, fmt="tar", shard_size=SHARD)
    shard = os.path.join(corpus.source, "0001.tar")
    offsets = member_offsets(shard)  # .jpg and .txt per entry
    keep = offsets[6] + (700 if cut == "inside-a-member" else 0)  # entries 0-2 complete, entry 3 cut
    truncate(shard, keep)
    with caplog.at_level(logging.WARNING, logger="datasets.corpus"):
        assert run_cluster(corpus.source, checkpoint, tmp_path / "out") == 0
    assert f"shard {shard} is damaged" in caplog.text
    lost = 1 if cut == "inside-a-member" else 0
    assert f"read 6 members (3 entries), lost {lost} entries cut short" in caplog.text
    assert "corpus: skipped 1 damaged shards" + (", 1 entries cut short in them" if lost else " (") \
        in capsys.readouterr().out
    split = load_split(str(tmp_path / "out"))
    assert split.num_pairs == N - SHARD + 3  # shards 0 and 2, and the readable part of shard 1
    assert set(corpus.ids[SHARD:SHARD + 3]) <= set(split.corpus_ids)


def test_complete_shards_read_without_a_warning(tmp_path, caplog):
    corpus = build_corpus_fixture(str(tmp_path / "corpus"), n=N, fmt="tar", shard_size=SHARD)
    reader = ImageTextCorpus(corpus.source)
    with caplog.at_level(logging.WARNING, logger="datasets.corpus"):
        assert len(list(reader)) == N
    assert reader.stats.bad_shards == 0 and "damaged" not in caplog.text


@pytest.mark.scenario("cluster.py", "bad input")
@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_manifest_that_is_not_utf8_is_named_with_its_line(tmp_path, checkpoint, capsys, fmt):
    corpus = build_corpus_fixture(str(tmp_path / "corpus"), n=6, fmt=fmt)
    lines = open(corpus.source, "rb").read().split(b"\n")
    lines[3] = lines[3].replace(b"a ", b"a caf\xe9 ", 1)  # latin-1, not UTF-8
    with open(corpus.source, "wb") as handle:
        handle.write(b"\n".join(lines))
    assert run_cluster(corpus.source, checkpoint, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert err.startswith(f"cluster.py: {corpus.source}:4: not UTF-8 text (byte 0xe9") 


@pytest.mark.scenario("cluster.py", "fault")
def test_full_disk_while_writing_the_split_then_a_rerun_writes_the_same_split(tmp_path, checkpoint, capsys,
                                                                               monkeypatch):
    import errno

    import numpy as np

    corpus = build_corpus_fixture(str(tmp_path / "corpus"), n=N, fmt="tsv")
    assert run_cluster(corpus.source, checkpoint, tmp_path / "full") == 0

    def full(fd):  # a full disk shows when the written blocks are flushed
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", full)
        assert run_cluster(corpus.source, checkpoint, tmp_path / "cut") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"cluster.py: cannot write {tmp_path / 'cut'}") and "No space left on device (" in err
    assert not (tmp_path / "cut" / "split.json").exists()
    assert run_cluster(corpus.source, checkpoint, tmp_path / "cut") == 0
    full_split, cut_split = load_split(str(tmp_path / "full")), load_split(str(tmp_path / "cut"))
    assert cut_split.corpus_ids == full_split.corpus_ids
    for full_level, cut_level in zip(full_split.levels, cut_split.levels):
        assert np.array_equal(full_level.assignment, cut_level.assignment)
