"""Synthetic image-text features with planted hierarchical clusters (for tests and the benchmark).

Fine clusters are the leaves of a tree with the given ``branching`` (e.g. (4, 4, 4): 4 coarse
groups, 16 middle, 64 fine); a child's centre is its parent's plus ``spread`` times Gaussian noise,
so siblings are closer than cousins. Image and text get one such tree each (same shape, same fine
labels). A pair's feature is its fine cluster's centre (unit) plus isotropic noise of norm about
``noise``; rows are float32 and not normalised.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def hierarchical_centres(rng: np.random.Generator, dim: int, branching: Sequence[int],
                         spread: float = 0.5) -> np.ndarray:
    """Unit centres of the ``prod(branching)`` fine clusters, in tree order."""
    centres = rng.standard_normal((1, dim))
    for width in branching:
        children = np.repeat(centres, width, axis=0)
        centres = children + spread * rng.standard_normal(children.shape)
    return (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32)


def noisy_rows(centres: np.ndarray, labels: np.ndarray, noise: float, rng: np.random.Generator,
               chunk: int = 65536) -> np.ndarray:
    """``centres[labels]`` plus Gaussian noise of norm about ``noise``, filled chunk by chunk."""
    dim = centres.shape[1]
    out = np.empty((labels.shape[0], dim), np.float32)
    scale = np.float32(noise / np.sqrt(dim))
    for start in range(0, labels.shape[0], chunk):
        rows = slice(start, min(start + chunk, labels.shape[0]))
        out[rows] = rng.standard_normal((rows.stop - rows.start, dim), dtype=np.float32)
        out[rows] *= scale
        out[rows] += centres[labels[rows]]
    return out


def hierarchical_pairs(num_pairs: int, dim: int, branching: Sequence[int] = (4, 4, 4), spread: float = 0.5,
                       noise: float = 0.8, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image, text, fine labels)`` of ``num_pairs`` pairs with uniformly drawn fine clusters."""
    rng = np.random.default_rng(seed)
    image_centres = hierarchical_centres(rng, dim, branching, spread)
    text_centres = hierarchical_centres(rng, dim, branching, spread)
    labels = rng.integers(0, image_centres.shape[0], num_pairs)
    return noisy_rows(image_centres, labels, noise, rng), noisy_rows(text_centres, labels, noise, rng), labels


def labels_at_depth(fine_labels: np.ndarray, branching: Sequence[int], depth: int) -> np.ndarray:
    """Planted cluster of each pair at tree depth ``depth`` (0: coarsest, len(branching)-1: fine)."""
    return fine_labels // int(np.prod(branching[depth + 1:]))
