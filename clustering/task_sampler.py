"""Meta-task construction from a split: support and query sets from two different clusters (domains).

A task at level ``l`` is ``support_size`` pairs drawn without replacement from one cluster and
``query_size`` pairs from another cluster of the same level; ids are row indices into the corpus
features (the split's row order). Clusters with fewer pairs than a set needs are never drawn for
that set.

Adaptive construction (``adaptive=True``, the journal extension's complexity-driven tasks; the
papers give no formula, this is the project's):

- path complexity: ``P(c) = prod_{l' <= l} complexity_{l'}(ancestor_{l'}(c))``, the complexity of the
  cluster times that of every coarser cluster holding it, so complex regions of the hierarchy and
  complex clusters within them both count;
- the support cluster is drawn with probability proportional to ``P(s)`` (more tasks come from
  complex parts of the hierarchy);
- the query cluster is drawn among the other clusters with probability proportional to
  ``P(q) * exp(-sim(s, q) / pair_temperature)``, where ``sim`` is the cosine of the two clusters'
  joint prototypes: pairs with a larger domain shift (harder transfer) are favoured, smoothly, so
  near pairs still occur.

(Weights are floored at 1e-6 so every eligible cluster keeps a chance.) With ``adaptive=False`` both
clusters are uniform over the eligible ones. ``clusters`` restricts both draws to a subset of the level's
clusters: meta-training on some clusters while validation tasks come from the others
(``held_out_clusters``, the validation protocol of ``meta_trainer``). Each call of ``sample`` /
``sample_tasks`` draws from a generator seeded by ``(seed, step)`` and then advances ``step``, so
the same seed gives the same sequence of meta-batches, and a resumed run continues it exactly
(``state_dict`` / ``load_state_dict``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .split_file import ClusterSplit


@dataclass(frozen=True)
class Task:
    support_ids: np.ndarray  # (support_size,) int64 row indices
    query_ids: np.ndarray  # (query_size,) int64 row indices
    support_cluster: int
    query_cluster: int
    similarity: float  # cosine of the two clusters' joint prototypes (domain similarity)


def path_complexity(split: ClusterSplit, level: int) -> np.ndarray:
    """Product of the complexities along each cluster's path from the coarsest level down to ``level``."""
    score = split.levels[level].complexity.astype(np.float64, copy=True)
    cluster = np.arange(split.levels[level].num_clusters)
    for index in range(level, 0, -1):
        cluster = split.levels[index].parent[cluster]
        score *= split.levels[index - 1].complexity[cluster]
    return score


def held_out_clusters(split: ClusterSplit, level: int, count: int, min_size: int, seed: int) -> np.ndarray:
    """``count`` clusters of ``level`` (with >= ``min_size`` pairs) drawn at random with ``seed``, sorted:
    the domains that validation tasks come from and meta-training never sees."""
    sizes = split.levels[level].sizes
    eligible = np.flatnonzero(sizes >= min_size)
    if count < 2 or count > eligible.shape[0] - 2:
        raise ValueError(f"holding out {count} clusters needs 2 <= count <= {eligible.shape[0] - 2}: a task takes "
                         f"two clusters, and level {level} has {eligible.shape[0]} with >= {min_size} pairs")
    return np.sort(np.random.default_rng([seed, count]).choice(eligible, size=count, replace=False))


class TaskSampler:
    """Draws meta-batches of cross-cluster tasks from one level of a split."""

    def __init__(self, split: ClusterSplit, level: int = -1, support_size: int = 16, query_size: int = 16,
                 seed: int = 0, adaptive: bool = True, pair_temperature: float = 0.2,
                 clusters: Optional[Sequence[int]] = None) -> None:
        num_levels = len(split.levels)
        if not -num_levels <= level < num_levels:
            raise IndexError(f"level {level} does not exist: the split has {num_levels} level(s)")
        if support_size < 1 or query_size < 1:
            raise ValueError(f"support_size and query_size must be >= 1, got {support_size} and {query_size}")
        if pair_temperature <= 0:
            raise ValueError(f"pair_temperature must be > 0, got {pair_temperature}")
        self.level = level % num_levels
        self.support_size = support_size
        self.query_size = query_size
        self.seed = seed
        self.adaptive = adaptive
        self.pair_temperature = pair_temperature
        self.step = 0

        chosen = split.levels[self.level]
        self.members = self._members_by_cluster(chosen.assignment, chosen.num_clusters)
        self.similarity = (chosen.joint_prototypes @ chosen.joint_prototypes.T).astype(np.float64)
        allowed = np.ones(chosen.num_clusters, dtype=bool)
        if clusters is not None:
            allowed[:] = False
            allowed[np.asarray(clusters, dtype=np.int64)] = True
        self.query_eligible = (chosen.sizes >= query_size) & allowed
        partners = self.query_eligible.sum() - self.query_eligible
        self.support_eligible = (chosen.sizes >= support_size) & (partners > 0) & allowed
        if not self.support_eligible.any():
            among = "" if clusters is None else f" among clusters {sorted(int(c) for c in clusters)}"
            raise ValueError(f"level {self.level} has no two different clusters{among} with >= {support_size} "
                             f"(support) and >= {query_size} (query) pairs; cluster sizes: {chosen.sizes.tolist()}")
        weight = path_complexity(split, self.level) if adaptive else np.ones(chosen.num_clusters)
        self.log_weight = np.log(np.maximum(weight, 1e-6))

    @staticmethod
    def _members_by_cluster(assignment: np.ndarray, num_clusters: int) -> list[np.ndarray]:
        order = np.argsort(assignment, kind="stable")
        bounds = np.cumsum(np.bincount(assignment, minlength=num_clusters))
        return np.split(order, bounds[:-1])

    def state_dict(self) -> dict:
        return {"seed": self.seed, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.step = int(state["step"])

    @staticmethod
    def _draw(rng: np.random.Generator, log_weight: np.ndarray, eligible: np.ndarray) -> int:
        logits = np.where(eligible, log_weight, -np.inf)
        probability = np.exp(logits - logits.max())
        return int(rng.choice(probability.shape[0], p=probability / probability.sum()))

    def _draw_clusters(self, rng: np.random.Generator) -> tuple[int, int]:
        support = self._draw(rng, self.log_weight, self.support_eligible)
        query_log_weight = self.log_weight
        if self.adaptive:
            query_log_weight = query_log_weight - self.similarity[support] / self.pair_temperature
        query_eligible = self.query_eligible.copy()
        query_eligible[support] = False
        return support, self._draw(rng, query_log_weight, query_eligible)

    def sample_tasks(self, meta_batch: int) -> list[Task]:
        """``meta_batch`` tasks with their clusters and domain similarity; advances ``step``."""
        rng = np.random.default_rng([self.seed, self.step])
        self.step += 1
        tasks = []
        for _ in range(meta_batch):
            support, query = self._draw_clusters(rng)
            tasks.append(Task(
                support_ids=rng.choice(self.members[support], self.support_size, replace=False),
                query_ids=rng.choice(self.members[query], self.query_size, replace=False),
                support_cluster=support, query_cluster=query,
                similarity=float(self.similarity[support, query])))
        return tasks

    def sample(self, meta_batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``meta_batch`` tasks as ``(support_ids, query_ids)``; the same draws as ``sample_tasks``."""
        return [(task.support_ids, task.query_ids) for task in self.sample_tasks(meta_batch)]
