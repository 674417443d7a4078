"""cluster.py's feature cache resumes across processes: re-runs, kill -9 mid-encoding, damaged shards."""
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from datasets.fixtures import build_corpus_fixture
from helpers_clip import REPO as ROOT
from helpers_clip import entry_point_env
from clustering import load_encoded
from clustering.encode import describe_transform
from helpers_distributed import corpus_and_tiny_clip
from trainers.backbone.transforms import clip_preprocess

SHARD_SIZE = 8
KILLED_AT_SHARD = 3

# Runs cluster.py, but dies by SIGKILL while writing shard KILLED_AT_SHARD: its image file is half there.
KILLING_CLUSTER = f"""
import os, signal, sys
import cluster
from clustering import encode

write = encode._ShardBuilder.write

def write_then_die(kept, cache_dir, index, settings):
    if index == {KILLED_AT_SHARD}:
        with open(os.path.join(cache_dir, encode._shard_files(index)["image"]), "wb") as handle:
            handle.write(b"half a shard")
        os.kill(os.getpid(), signal.SIGKILL)
    write(kept, cache_dir, index, settings)

encode._ShardBuilder.write = staticmethod(write_then_die)
sys.exit(cluster.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def corpus_and_clip(tmp_path_factory):
    return corpus_and_tiny_clip(tmp_path_factory.mktemp("resume"), n=40, n_corrupt=2)


def _arguments(corpus, checkpoint, out):
    return ["--corpus", corpus.source, "--clip", checkpoint, "--out", str(out), "--method", "kmeans", "--k", "4",
            "--batch-size", "5", "--shard-size", str(SHARD_SIZE)]


def _run_here(corpus, checkpoint, out, capsys):
    """cluster.py in this process; returns (exit code, stdout + stderr)."""
    import cluster

    code = cluster.main(_arguments(corpus, checkpoint, out))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _run(corpus, checkpoint, out, script=None):
    """cluster.py in a new process; returns (exit code, stdout + stderr)."""
    command = [sys.executable, "-c", script, *_arguments(corpus, checkpoint, out)] if script else \
        [sys.executable, os.path.join(ROOT, "cluster.py"), *_arguments(corpus, checkpoint, out)]
    result = subprocess.run(command, cwd=ROOT, env=entry_point_env(), capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout + result.stderr


def _counts(output):
    match = re.search(r"(\d+) pairs \((\d+) encoded now, (\d+) reused", output)
    assert match, output
    return tuple(int(group) for group in match.groups())


def _readable(corpus, items):
    return sum(corpus_id not in corpus.corrupt_ids for corpus_id in corpus.ids[items])


@pytest.fixture(scope="module")
def straight_run(corpus_and_clip, tmp_path_factory):
    corpus, checkpoint = corpus_and_clip
    out = tmp_path_factory.mktemp("straight")
    code, output = _run(corpus, checkpoint, out)
    assert code == 0, output
    return out, output


def test_transform_key_has_no_memory_address():
    key = describe_transform(clip_preprocess(32))
    assert "0x" not in key and "to_rgb" in key


@pytest.mark.slow
def test_rerun_in_a_new_process_reuses_every_shard(corpus_and_clip, straight_run):
    corpus, checkpoint = corpus_and_clip
    out, first = straight_run
    assert _counts(first) == (38, 38, 0)
    code, again = _run(corpus, checkpoint, out)
    assert code == 0, again
    assert _counts(again) == (38, 0, 38)


@pytest.mark.slow
def test_run_killed_mid_encoding_resumes_from_its_finished_shards(corpus_and_clip, straight_run, tmp_path):
    corpus, checkpoint = corpus_and_clip
    code, output = _run(corpus, checkpoint, tmp_path, script=KILLING_CLUSTER)
    assert code == -signal.SIGKILL, output
    assert os.path.getsize(tmp_path / "features" / f"shard_{KILLED_AT_SHARD:05d}.image.npy") == len(b"half a shard")
    code, resumed = _run(corpus, checkpoint, tmp_path)
    assert code == 0, resumed
    reused = _readable(corpus, slice(0, KILLED_AT_SHARD * SHARD_SIZE))
    assert _counts(resumed) == (38, 38 - reused, reused)
    straight = load_encoded(str(straight_run[0] / "features"))
    again = load_encoded(str(tmp_path / "features"))
    assert again.ids == straight.ids
    np.testing.assert_array_equal(again.image, straight.image)
    np.testing.assert_array_equal(again.text, straight.text)


def test_damaged_shard_is_not_trusted_and_only_it_is_reencoded(corpus_and_clip, tmp_path, capsys):
    corpus, checkpoint = corpus_and_clip
    assert _run_here(corpus, checkpoint, tmp_path, capsys)[0] == 0
    before = load_encoded(str(tmp_path / "features"))
    path = tmp_path / "features" / "shard_00001.text.npy"
    data = bytearray(path.read_bytes())
    data[-8:] = bytes(8)  # same size, last features zeroed: only the recorded sha256 can tell
    path.write_bytes(bytes(data))
    code, output = _run_here(corpus, checkpoint, tmp_path, capsys)
    assert code == 0, output
    in_shard = _readable(corpus, slice(SHARD_SIZE, 2 * SHARD_SIZE))
    assert _counts(output) == (38, in_shard, 38 - in_shard)
    np.testing.assert_array_equal(load_encoded(str(tmp_path / "features")).text, before.text)


def test_appended_rows_are_the_only_ones_encoded(corpus_and_clip, tmp_path, capsys):
    checkpoint = corpus_and_clip[1]
    corpus = build_corpus_fixture(str(tmp_path / "corpus"), n=44, fmt="tsv", n_corrupt=2)
    with open(corpus.source) as handle:
        lines = handle.readlines()
    with open(corpus.source, "w") as handle:
        handle.writelines(lines[:41])  # the header and the first 40 entries
    first = _readable(corpus, slice(0, 40))
    assert _counts(_run_here(corpus, checkpoint, tmp_path, capsys)[1])[:2] == (first, first)
    with open(corpus.source, "w") as handle:
        handle.writelines(lines)
    code, output = _run_here(corpus, checkpoint, tmp_path, capsys)
    assert code == 0, output
    added = _readable(corpus, slice(40, 44))
    assert _counts(output) == (first + added, added, first)
