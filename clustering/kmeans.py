"""Flat k-means on joint image-text features with FAISS (the GRAM ICCV setting: each cluster a domain).

``fit_joint_kmeans`` clusters the joint features ``z = [x, y] / sqrt(2)`` (see ``features``) with
``faiss.Kmeans`` (L2, seeded, ``niter`` Lloyd iterations from random data points; with ``nredo`` > 1
the run of lowest objective among ``nredo`` initialisations is kept, the usual guard against a
local optimum that merges two true clusters when ``k`` is close to their number):
1. training runs on a seeded uniform sample of at most ``k * max_points_per_centroid`` pairs (FAISS's
   own rule, done here so only the sample's joint features are ever built);
2. one chunked pass then assigns every pair to its nearest centroid and gathers the leaf statistics
   (counts, feature sums, pair cosines; see ``stats``) used for prototypes, the hierarchy and the
   complexity, so the data is read once more and never copied whole.
On a machine with FAISS GPU support and ``--gpu`` the same calls run on every visible GPU (FAISS's own
multi-GPU index: the flat index is cloned to each GPU and queries are split between them, for training
and for the assignment); otherwise, and for the sampling, on the CPU. Results agree up to float
rounding of the distance computations.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import faiss
import numpy as np

from .features import PairedFeatures, joint_features
from .stats import ClusterStats

LOGGER = logging.getLogger(__name__)


@dataclass
class KMeansResult:
    centroids: np.ndarray  # (k, 2d) float32, joint-feature centroids
    assignment: np.ndarray  # (n,) int64, nearest centroid of every pair
    leaf_stats: ClusterStats  # statistics of the k clusters


def visible_gpus() -> int:
    """How many GPUs this FAISS build can use (0 for a CPU-only build)."""
    return faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0


def gpu_available() -> bool:
    """True when this FAISS build can run on at least one GPU."""
    return visible_gpus() > 0


def resolve_gpu(requested: bool) -> bool:
    """Use the GPU when asked for and available; say so when asked for but not available."""
    if requested and not gpu_available():
        LOGGER.warning("--gpu asked for, but this FAISS build sees no GPU; clustering on the CPU")
    return requested and gpu_available()


def kmeans_gpus(requested: bool) -> int:
    """Number of GPUs k-means runs on: every visible one when asked for (FAISS clones the index to each,
    ``index_cpu_to_all_gpus``, and splits the distance computations between them); 0, the CPU, when
    not asked for or none is visible."""
    gpus = visible_gpus() if resolve_gpu(requested) else 0
    if gpus:
        LOGGER.info("k-means and assignment on %d GPU%s (FAISS multi-GPU index)", gpus, "s" if gpus > 1 else "")
    return gpus


def _training_sample(features: PairedFeatures, k: int, max_points_per_centroid: int, seed: int) -> np.ndarray:
    sample_size = min(features.num_pairs, k * max_points_per_centroid)
    if sample_size == features.num_pairs:
        rows = np.arange(features.num_pairs)
    else:
        rows = np.sort(np.random.default_rng(seed).choice(features.num_pairs, sample_size, replace=False))
    return features.joint(rows)


def fit_joint_kmeans(
    features: PairedFeatures,
    k: int,
    niter: int = 20,
    seed: int = 1,
    max_points_per_centroid: int = 256,
    use_gpu: int = 0,
    nredo: int = 1,
) -> KMeansResult:
    """k-means with ``k`` centroids on the joint features of ``features`` (validated beforehand), on
    ``use_gpu`` GPUs (0: the CPU; see ``kmeans_gpus``)."""
    sample = _training_sample(features, k, max_points_per_centroid, seed)
    kmeans = faiss.Kmeans(sample.shape[1], k, niter=niter, nredo=nredo, seed=seed, gpu=int(use_gpu), verbose=False,
                          max_points_per_centroid=max_points_per_centroid, min_points_per_centroid=1)
    kmeans.train(sample)
    del sample
    index = kmeans.index
    index.reset()
    index.add(kmeans.centroids)

    assignment = np.empty(features.num_pairs, dtype=np.int64)
    leaf_stats = ClusterStats.zeros(k, features.dim)
    for rows, image_unit, text_unit in features.chunks():
        _, nearest = index.search(joint_features(image_unit, text_unit), 1)
        assignment[rows] = nearest[:, 0]
        leaf_stats.accumulate(nearest[:, 0], image_unit, text_unit)
    return KMeansResult(kmeans.centroids, assignment, leaf_stats)
