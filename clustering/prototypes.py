"""Complexity-informed cluster prototypes (the journal extension's prototypes; ``prototype_strength`` > 0).

Plain prototypes are a cluster's normalised mean unit image (text, joint) feature. The journal builds a
cluster's prototype with the cluster's structure complexity; it gives no formula, so this project uses
the following, from the k-means leaves' sufficient statistics (``stats``), with no extra pass over the data.

A cluster ``c`` of a level is a union of leaves ``a`` with ``n_a`` pairs, mean unit image feature ``u_a``
and mean unit text feature ``v_a``. Let ``k_a`` be the leaf's structure complexity among the leaves
(dispersion and image-text disagreement, ``complexity.structure_complexity``, mean 1 over the leaves) and
``K_c`` the cluster's complexity at its level (mean 1 over the level). With strength ``gamma >= 0``:

    w_a   = n_a * exp(-gamma * K_c * (k_a - 1))
    P_c^x = normalise( sum_{a in c} w_a u_a ),   P_c^y = normalise( sum_{a in c} w_a v_a ),
    P_c^j = normalise( [sum_a w_a u_a, sum_a w_a v_a] )

A leaf more dispersed or with looser captions than a typical leaf (``k_a > 1``) counts less, a coherent
one more, and the more so the more complex the cluster is: in a complex cluster the prototype moves
toward its coherent core instead of the centre of a spread-out mixture; in a simple cluster it stays
near the plain mean. ``gamma = 0`` gives the plain prototypes exactly. A flat k-means level is its own
leaves (one leaf per cluster), so there the prototypes are the plain ones for any ``gamma``.
The prototypes feed the task sampler's domain similarity (query choice and the consistency target) and
the test-time structure features.
"""
from __future__ import annotations

import numpy as np

from .stats import ClusterStats, _unit_rows


def leaf_weights(leaves: ClusterStats, labels: np.ndarray, leaf_complexity: np.ndarray,
                 cluster_complexity: np.ndarray, strength: float) -> np.ndarray:
    """``w_a`` of every leaf (float64): its pair count scaled by ``exp(-gamma K_c (k_a - 1))``."""
    if strength < 0:
        raise ValueError(f"prototype strength must be >= 0, got {strength}")
    exponent = -strength * cluster_complexity[labels] * (leaf_complexity - 1.0)
    return leaves.count.astype(np.float64) * np.exp(exponent)


def complexity_informed_prototypes(leaves: ClusterStats, labels: np.ndarray, num_clusters: int,
                                   leaf_complexity: np.ndarray, cluster_complexity: np.ndarray,
                                   strength: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, text, joint) prototypes (float32, unit rows) of the clusters formed by leaf ``labels``."""
    weights = leaf_weights(leaves, labels, leaf_complexity, cluster_complexity, strength)
    membership = np.zeros((num_clusters, labels.shape[0]))
    membership[labels, np.arange(labels.shape[0])] = weights
    image = membership @ leaves.image_means()
    text = membership @ leaves.text_means()
    return _unit_rows(image), _unit_rows(text), _unit_rows(np.concatenate([image, text], axis=1))
