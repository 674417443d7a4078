"""From paired CLIP features to a ``ClusterSplit``: the clustering stage's pipeline.

``method="kmeans"`` (GRAM, ICCV): one level, the ``k`` k-means clusters of the joint features
(a cluster k-means leaves empty is dropped, so the level may hold fewer).
``method="cmhc"`` (journal extension): ``k`` k-means leaves merged into the levels ``levels``
(coarse to fine) by cross-modal average linkage (see ``cmhc``).
For every level: assignments, sizes, image/text/joint prototypes and the structure complexity.
``prototype_strength`` > 0 builds CMHC prototypes with the clusters' complexity (``prototypes``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

from .cmhc import average_linkage_levels, cross_modal_affinity, parent_map
from .complexity import structure_complexity
from .features import FeatureError, PairedFeatures
from .kmeans import KMeansResult, fit_joint_kmeans, kmeans_gpus
from .prototypes import complexity_informed_prototypes
from .split_file import ClusterLevel, ClusterSplit
from .stats import ClusterStats

METHODS = ("kmeans", "cmhc")


@dataclass
class ClusteringSettings:
    method: str = "cmhc"
    k: int = 256  # k-means clusters (kmeans) or leaves (cmhc)
    levels: tuple[int, ...] = (4, 16, 64)  # clusters per CMHC level, coarse to fine
    niter: int = 20  # k-means iterations
    nredo: int = 1  # k-means restarts (the lowest objective is kept)
    seed: int = 1
    max_points_per_centroid: int = 256  # k-means trains on at most k * this many pairs
    affinity_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # (w_ii, w_tt, w_it)
    complexity_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # dispersion, disagreement, substructure
    prototype_strength: float = 0.0  # gamma of the complexity-informed prototypes (0: plain means)
    gpu: bool = False
    chunk_size: int = 16384  # rows per pass chunk

    def level_sizes(self) -> list[int]:
        """Clusters per level, coarse to fine."""
        return [self.k] if self.method == "kmeans" else [int(m) for m in self.levels]

    def check(self, num_pairs: int) -> None:
        """Refuse settings that cannot be met on ``num_pairs`` pairs."""
        if self.method not in METHODS:
            raise ValueError(f"unknown clustering method {self.method!r}; expected one of {METHODS}")
        if self.prototype_strength < 0:
            raise ValueError(f"prototype_strength must be >= 0, got {self.prototype_strength}")
        if min(self.k, self.niter, self.nredo, self.max_points_per_centroid, self.chunk_size) < 1:
            raise ValueError(f"k, niter, nredo, max_points_per_centroid and chunk_size must be >= 1, got "
                             f"{self.k}, {self.niter}, {self.nredo}, {self.max_points_per_centroid}, {self.chunk_size}")
        if num_pairs < self.k:
            raise ValueError(f"the corpus has {num_pairs} pairs but {self.k} clusters were asked for (k); "
                             f"use k <= {num_pairs}")
        sizes = self.level_sizes()
        if self.method == "cmhc":
            if not sizes or sorted(set(sizes)) != sizes or sizes[0] < 1:
                raise ValueError(f"CMHC levels must be strictly increasing cluster counts >= 1, got {sizes}")
            if sizes[-1] > self.k:
                raise ValueError(f"the finest CMHC level has {sizes[-1]} clusters but k-means makes only "
                                 f"{self.k} leaves; use levels <= k")

    def to_json(self) -> dict:
        record = asdict(self)
        for key in ("levels", "affinity_weights", "complexity_weights"):
            record[key] = list(record[key])
        return record


def _level(assignment: np.ndarray, stats: ClusterStats, complexity: np.ndarray,
           parent: Optional[np.ndarray], prototypes: Optional[tuple] = None) -> ClusterLevel:
    image, text, joint = prototypes or (stats.image_prototypes(), stats.text_prototypes(), stats.joint_prototypes())
    return ClusterLevel(num_clusters=int(stats.count.shape[0]), assignment=assignment.astype(np.int32),
                        sizes=stats.count.copy(), image_prototypes=image, text_prototypes=text,
                        joint_prototypes=joint, complexity=complexity, parent=parent)


def _check_unique_ids(ids: Sequence[str], source: str) -> None:
    seen: dict[str, int] = {}
    for row, corpus_id in enumerate(ids):
        first = seen.setdefault(corpus_id, row)
        if first != row:
            raise FeatureError(f"{source} has duplicate id {corpus_id!r} (rows {first} and {row})")


def _occupied_leaves(fit: KMeansResult) -> tuple[ClusterStats, np.ndarray]:
    """Statistics of the non-empty k-means clusters and each pair's index among them."""
    occupied = np.flatnonzero(fit.leaf_stats.count > 0)
    compact = np.full(fit.leaf_stats.count.shape[0], -1, dtype=np.int64)
    compact[occupied] = np.arange(occupied.shape[0])
    return fit.leaf_stats.subset(occupied), compact[fit.assignment]


def _cmhc_levels(leaves: ClusterStats, leaf_of_pair: np.ndarray, settings: ClusteringSettings) -> list[ClusterLevel]:
    num_leaves = leaves.count.shape[0]
    level_sizes = settings.level_sizes()
    if num_leaves < level_sizes[-1]:
        raise ValueError(f"k-means left only {num_leaves} non-empty leaves (duplicate pairs?), fewer than "
                         f"the {level_sizes[-1]} clusters of the finest level; use smaller levels")
    affinity = cross_modal_affinity(leaves.image_means(), leaves.text_means(), settings.affinity_weights)
    leaf_labels = average_linkage_levels(affinity, leaves.count, level_sizes)
    finer_labels = leaf_labels[1:] + [np.arange(num_leaves)]
    leaf_complexity = structure_complexity(leaves, None, settings.complexity_weights)
    levels = []
    for index, (labels, num_clusters) in enumerate(zip(leaf_labels, level_sizes)):
        stats = leaves.merge(labels, num_clusters)
        finer = finer_labels[index]
        children = np.bincount(parent_map(finer, labels, int(finer.max()) + 1), minlength=num_clusters)
        complexity = structure_complexity(stats, children, settings.complexity_weights)
        parent = parent_map(labels, leaf_labels[index - 1], num_clusters) if index > 0 else None
        prototypes = None
        if settings.prototype_strength > 0:
            prototypes = complexity_informed_prototypes(leaves, labels, num_clusters, leaf_complexity, complexity,
                                                        settings.prototype_strength)
        levels.append(_level(labels[leaf_of_pair], stats, complexity, parent, prototypes))
    return levels


def build_split(image: np.ndarray, text: np.ndarray, corpus_ids: Sequence[str], settings: ClusteringSettings,
                clip_fingerprint: str, source: str = "the corpus") -> ClusterSplit:
    """Cluster the pairs (rows of ``image``/``text``, ids ``corpus_ids``) as ``settings`` says."""
    corpus_ids = [str(corpus_id) for corpus_id in corpus_ids]
    _check_unique_ids(corpus_ids, source)
    features = PairedFeatures(image, text, corpus_ids, settings.chunk_size)
    settings.check(features.num_pairs)
    fit = fit_joint_kmeans(features, settings.k, settings.niter, settings.seed,
                           settings.max_points_per_centroid, kmeans_gpus(settings.gpu), settings.nredo)
    leaves, leaf_of_pair = _occupied_leaves(fit)
    if settings.method == "kmeans":
        complexity = structure_complexity(leaves, None, settings.complexity_weights)
        levels = [_level(leaf_of_pair, leaves, complexity, None)]
    else:
        levels = _cmhc_levels(leaves, leaf_of_pair, settings)
    return ClusterSplit(method=settings.method, levels=levels, corpus_ids=corpus_ids,
                        clip_fingerprint=clip_fingerprint, settings=settings.to_json())
