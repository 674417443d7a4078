"""Structure complexity of each cluster (the journal extension's per-cluster complexity score).

The papers describe the complexity of a domain in terms of its internal structure without fixing a
formula. This project scores cluster ``c`` of one level from three raw terms (see ``stats``):

- dispersion ``D(c) = 1 - (|mean unit image| + |mean unit text|) / 2``: how spread the pairs are;
- image-text disagreement ``G(c) = 1 - mean_i <x_i, y_i>``: how weakly captions match their images;
- sub-structure ``S(c) = log(1 + number of clusters of the next finer level inside c)``; for the
  finest level the k-means leaves inside ``c`` count. A flat clustering has no finer structure, so
  the term is left out there.

Each term is divided by its mean over the clusters of the level (a term that is 0 everywhere counts
as 1 everywhere), so 1.0 means "as complex as a typical cluster of this level" and the terms are on a
common scale. The score is their weighted mean with weights ``(w_dispersion, w_disagreement,
w_substructure)`` (default equal):

    complexity(c) = sum_t w_t * T_t(c) / mean_c' T_t(c')  /  sum_t w_t

so the scores of a level average to 1. The task sampler uses them as relative sampling weights.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .stats import ClusterStats


def _relative(term: np.ndarray) -> np.ndarray:
    mean = float(term.mean())
    return term / mean if mean > 0 else np.ones_like(term)


def structure_complexity(stats: ClusterStats, children_per_cluster: Optional[np.ndarray],
                         weights: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Complexity score per cluster (float64, mean 1 over the level)."""
    if len(weights) != 3 or min(weights) < 0:
        raise ValueError(f"complexity weights (dispersion, disagreement, substructure) must be 3 numbers >= 0, got {tuple(weights)}")
    terms = [np.clip(stats.dispersion(), 0.0, None), np.clip(stats.disagreement(), 0.0, None)]
    used_weights = list(weights[:2])
    if children_per_cluster is not None:
        terms.append(np.log1p(children_per_cluster.astype(np.float64)))
        used_weights.append(weights[2])
    total = float(sum(used_weights))
    if total <= 0:
        raise ValueError(f"complexity weights {tuple(weights)} give no weight to any term this clustering has")
    return sum(w * _relative(term) for w, term in zip(used_weights, terms)) / total
