"""The task sampler: cross-cluster tasks, determinism, complexity-driven adaptive construction."""
import dataclasses

import numpy as np
import pytest

from clustering import ClusteringSettings, TaskSampler, build_split
from testing.planted import hierarchical_pairs
from clustering.task_sampler import path_complexity


@pytest.fixture(scope="module")
def split():
    image, text, _ = hierarchical_pairs(1200, 16, branching=(3, 3), noise=1.0, seed=0)
    return build_split(image, text, [str(row) for row in range(1200)],
                       ClusteringSettings(k=36, levels=(3, 9)), clip_fingerprint="fp")


@pytest.mark.parametrize("adaptive", [True, False])
@pytest.mark.parametrize("level", [0, 1])
def test_support_and_query_never_share_a_cluster(split, adaptive, level):
    sampler = TaskSampler(split, level=level, support_size=5, query_size=7, seed=3, adaptive=adaptive)
    assignment = split.levels[level].assignment
    for _ in range(20):
        for task in sampler.sample_tasks(8):
            assert task.support_ids.shape == (5,) and task.query_ids.shape == (7,)
            assert len(set(task.support_ids.tolist())) == 5 and len(set(task.query_ids.tolist())) == 7
            assert set(assignment[task.support_ids].tolist()) == {task.support_cluster}
            assert set(assignment[task.query_ids].tolist()) == {task.query_cluster}
            assert task.support_cluster != task.query_cluster


def test_sample_returns_id_pairs_matching_the_tasks(split):
    tasks = TaskSampler(split, seed=5).sample_tasks(4)
    pairs = TaskSampler(split, seed=5).sample(4)
    assert len(pairs) == 4
    for (support_ids, query_ids), task in zip(pairs, tasks):
        np.testing.assert_array_equal(support_ids, task.support_ids)
        np.testing.assert_array_equal(query_ids, task.query_ids)


def test_similarity_is_cosine_of_joint_prototypes(split):
    prototypes = split.levels[1].joint_prototypes
    for task in TaskSampler(split, level=1, seed=0).sample_tasks(10):
        expected = float(prototypes[task.support_cluster] @ prototypes[task.query_cluster])
        assert task.similarity == pytest.approx(expected, abs=1e-6)


def test_same_seed_same_tasks_and_resume_continues_the_sequence(split):
    first = TaskSampler(split, seed=11)
    run = [first.sample(3) for _ in range(4)]
    again = TaskSampler(split, seed=11)
    assert all(_same(again.sample(3), batch) for batch in run)
    resumed = TaskSampler(split, seed=11)
    resumed.load_state_dict({"seed": 11, "step": 2})
    assert _same(resumed.sample(3), run[2])
    assert not _same(TaskSampler(split, seed=12).sample(3), run[0])


def _same(a, b):
    return all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b))


def _with_complexity(split, level, complexity):
    levels = list(split.levels)
    levels[level] = dataclasses.replace(levels[level], complexity=np.asarray(complexity, dtype=np.float64))
    return dataclasses.replace(split, levels=levels)


def test_adaptive_draws_more_tasks_from_complex_clusters(split):
    complexity = np.ones(9)
    complexity[4] = 4.0
    skewed = _with_complexity(_with_complexity(split, 0, np.ones(3)), 1, complexity)
    counts = np.zeros(9)
    sampler = TaskSampler(skewed, level=1, support_size=4, query_size=4, seed=0)
    for task in sampler.sample_tasks(3000):
        counts[task.support_cluster] += 1
    share = counts / counts.sum()
    assert share[4] == pytest.approx(4 / 12, abs=0.04)  # weight 4 among eight 1s
    uniform = np.zeros(9)
    for task in TaskSampler(skewed, level=1, support_size=4, query_size=4, seed=0, adaptive=False).sample_tasks(3000):
        uniform[task.support_cluster] += 1
    assert uniform[4] / uniform.sum() == pytest.approx(1 / 9, abs=0.03)


def test_adaptive_uses_the_complexity_of_coarser_clusters(split):
    coarse = np.array([3.0, 1.0, 1.0])
    skewed = _with_complexity(_with_complexity(split, 0, coarse), 1, np.ones(9))
    np.testing.assert_allclose(path_complexity(skewed, 1), coarse[split.levels[1].parent])


def test_adaptive_prefers_dissimilar_query_clusters(split):
    sampler = TaskSampler(split, level=1, support_size=4, query_size=4, seed=1, pair_temperature=0.1)
    uniform = TaskSampler(split, level=1, support_size=4, query_size=4, seed=1, adaptive=False)
    adaptive_similarity = np.mean([task.similarity for task in sampler.sample_tasks(2000)])
    uniform_similarity = np.mean([task.similarity for task in uniform.sample_tasks(2000)])
    assert adaptive_similarity < uniform_similarity - 0.05


def test_clusters_too_small_for_a_set_are_never_drawn(split):
    sizes = split.levels[1].sizes
    support_size = int(np.sort(sizes)[2]) + 1  # the three smallest clusters cannot give a support set
    sampler = TaskSampler(split, level=1, support_size=support_size, query_size=2, seed=0)
    small = set(np.flatnonzero(sizes < support_size).tolist())
    assert len(small) >= 3
    assert not small & {task.support_cluster for task in sampler.sample_tasks(500)}


def test_level_without_two_usable_clusters_is_refused(split):
    too_big = int(split.levels[0].sizes.max()) + 1
    with pytest.raises(ValueError, match="level 0 has no two different clusters"):
        TaskSampler(split, level=0, support_size=too_big, query_size=too_big)
    with pytest.raises(IndexError, match="level 5 does not exist"):
        TaskSampler(split, level=5)
