"""cluster.py and scripts/gram/cluster.sh end to end on a miniature corpus and a tiny CLIP."""
import os
import subprocess
import sys

import pytest

import cluster
from datasets.fixtures import build_corpus_fixture
from testing.tiny_clip import build_tiny_clip, save_clip_state_dict
from clustering import TaskSampler, load_split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def corpus_and_clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    corpus = build_corpus_fixture(str(root / "corpus"), n=40, fmt="tsv", n_corrupt=2)
    checkpoint = save_clip_state_dict(build_tiny_clip(embed_dim=64, image_resolution=32), str(root / "tiny_clip.pt"))
    return corpus, checkpoint


def _cluster(corpus, checkpoint, out, *extra):
    return cluster.main(["--corpus", corpus.source, "--clip", checkpoint, "--out", str(out), "--k", "8",
                         "--batch-size", "16", "--shard-size", "16", *extra])


def test_cli_writes_a_split_and_reuses_the_feature_cache(corpus_and_clip, tmp_path, capsys):
    corpus, checkpoint = corpus_and_clip
    assert _cluster(corpus, checkpoint, tmp_path, "--levels", "2,4") == 0
    first = capsys.readouterr().out
    assert "38 pairs (38 encoded now" in first  # two corrupt images skipped by the corpus reader
    split = load_split(str(tmp_path), expected_clip_fingerprint=cluster.checkpoint_fingerprint(checkpoint))
    assert [level.num_clusters for level in split.levels] == [2, 4] and split.num_pairs == 38
    assert not set(corpus.corrupt_ids) & set(split.corpus_ids)
    assert split.settings["feature_cache"] == str(tmp_path / "features")
    assert split.settings["corpus"] == os.path.abspath(corpus.source)
    TaskSampler(split, level=0, support_size=2, query_size=2).sample(2)

    assert _cluster(corpus, checkpoint, tmp_path, "--levels", "2,4") == 0
    assert "38 pairs (0 encoded now" in capsys.readouterr().out


def test_cli_flat_kmeans_with_loader_workers(corpus_and_clip, tmp_path):
    corpus, checkpoint = corpus_and_clip
    assert _cluster(corpus, checkpoint, tmp_path, "--method", "kmeans", "--workers", "2") == 0
    split = load_split(str(tmp_path))
    assert split.method == "kmeans" and [level.num_clusters for level in split.levels] == [8]
    assert sorted(split.corpus_ids) == sorted(set(corpus.ids) - set(corpus.corrupt_ids))


def test_cli_refuses_more_clusters_than_pairs(corpus_and_clip, tmp_path, capsys):
    corpus, checkpoint = corpus_and_clip
    code = cluster.main(["--corpus", corpus.source, "--clip", checkpoint, "--out", str(tmp_path), "--k", "500",
                         "--levels", "2,4"])
    assert code == 2
    assert "the corpus has 38 pairs but 500 clusters were asked for" in capsys.readouterr().err


def test_cli_refuses_levels_for_flat_kmeans(corpus_and_clip, tmp_path):
    corpus, checkpoint = corpus_and_clip
    with pytest.raises(SystemExit):
        _cluster(corpus, checkpoint, tmp_path, "--method", "kmeans", "--levels", "2,4")


def test_script_runs_cluster_py_coop_style(corpus_and_clip, tmp_path):
    corpus, checkpoint = corpus_and_clip
    environment = dict(os.environ, DATA=os.path.dirname(corpus.source), PYTHON=sys.executable,
                       OUTPUT=str(tmp_path), K="8", LEVELS="2,4",
                       CLUSTER_OPTS="--batch-size 16 --shard-size 16")
    command = ["bash", "scripts/gram/cluster.sh", os.path.basename(corpus.source), checkpoint]
    result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert load_split(str(tmp_path / "gram" / "split" / "cmhc_k8")).num_pairs == 38
    again = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert "Skip this job" in again.stdout
