"""cluster.py under torchrun (gloo, 2 processes): same features and split as one process; ranks must agree."""
import subprocess
import sys

import numpy as np
import pytest
import torch.multiprocessing as mp

from clustering import load_encoded, load_split
from helpers_clip import REPO as ROOT
from helpers_clip import entry_point_env
from helpers_distributed import corpus_and_tiny_clip, torchrun


@pytest.fixture(scope="module")
def corpus_and_clip(tmp_path_factory):
    return corpus_and_tiny_clip(tmp_path_factory.mktemp("distributed"), n=30, n_corrupt=1)


def _arguments(corpus, checkpoint, out):
    return ["cluster.py", "--corpus", corpus.source, "--clip", checkpoint, "--out", str(out), "--method", "kmeans",
            "--k", "3", "--batch-size", "4", "--shard-size", "6", "--device", "cpu"]


@pytest.mark.slow
def test_two_ranks_encode_the_same_features_as_one_process(corpus_and_clip, tmp_path):
    corpus, checkpoint = corpus_and_clip
    single = subprocess.run([sys.executable, *_arguments(corpus, checkpoint, tmp_path / "one")], cwd=ROOT,
                            env=entry_point_env(), capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    result = torchrun(2, *_arguments(corpus, checkpoint, tmp_path / "two"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("29 pairs (29 encoded now by 2 ranks") == 1  # rank 0 alone reports and clusters
    one, two = load_encoded(str(tmp_path / "one" / "features")), load_encoded(str(tmp_path / "two" / "features"))
    assert two.ids == one.ids and two.captions == one.captions
    np.testing.assert_array_equal(two.image, one.image)
    np.testing.assert_array_equal(two.text, one.text)
    split_one, split_two = load_split(str(tmp_path / "one")), load_split(str(tmp_path / "two"))
    np.testing.assert_array_equal(split_two.levels[0].assignment, split_one.levels[0].assignment)

    again = torchrun(2, *_arguments(corpus, checkpoint, tmp_path / "two"))
    assert again.returncode == 0 and "29 pairs (0 encoded now by 2 ranks, 29 reused" in again.stdout


def _agree_on(rank, port, results):
    import torch.distributed as dist

    from parallel import distributed

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        distributed.require_agreement({"split file": "split.json", "CLIP checkpoint": f"clip{rank}.pt"}, "program")
        results[rank] = "started"
    except distributed.RankMismatchError as error:
        results[rank] = str(error)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ranks_given_another_clip_are_refused_before_any_work():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_agree_on, args=(port, results), nprocs=2)
    expected = ("program: ranks disagree on CLIP checkpoint: rank 0 has 'clip0.pt', rank 1 has 'clip1.pt'; "
                "start every rank with the same inputs")
    assert dict(results) == {0: expected, 1: expected}


def test_one_process_under_torchrun_takes_the_non_distributed_path(monkeypatch):
    from parallel import distributed

    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert distributed.init_from_env() is False
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
