"""Cross-Modal Hierarchical Clustering (CMHC): a hierarchy of domains over an image-text corpus.

The GRAM journal extension organises the meta-training corpus as a hierarchy whose affinity combines
image-image, text-text and image-text similarity. The papers leave the exact procedure open; this
module implements the following, bottom-up over k-means centroids:

1. Leaves. Over-cluster the joint features with k-means (``kmeans.fit_joint_kmeans``, ``k`` leaves,
   e.g. 256). Leaves that end up with no pair are dropped. Every pair belongs to one leaf.
2. Leaf means. For leaf ``a``: ``u_a`` = mean of its unit image features, ``v_a`` = mean of its unit
   text features (not re-normalised).
3. Cross-modal affinity. Pairs ``i, j`` (unit image ``x``, unit text ``y``) have similarity
       s(i, j) = [ w_ii <x_i, x_j> + w_tt <y_i, y_j> + w_it (<x_i, y_j> + <y_i, x_j>) / 2 ]
                 / (w_ii + w_tt + w_it)
   with config weights ``(w_ii, w_tt, w_it)``. ``s`` is bilinear, so its mean over all pairs of two
   leaves is the same expression in the leaf means: ``A(a, b) = s(u_a, v_a; u_b, v_b)``. The
   cross-modal term compares one leaf's images with the other leaf's captions (symmetrised). Two
   leaves whose images look alike but whose captions differ (or the reverse) have a high unimodal
   similarity but a low cross-modal one, so it separates what one modality alone merges.
4. Agglomeration. Size-weighted average linkage (UPGMA with pair counts as weights) on ``A``:
   repeatedly merge the two clusters of highest affinity; the merged cluster's affinity to any other
   cluster ``R`` is ``(n_P A(P, R) + n_Q A(Q, R)) / (n_P + n_Q)`` (Lance-Williams). By step 3 this is
   exactly the mean of ``s`` over all pairs of the two clusters: CMHC is average linkage over the
   corpus's pairs with similarity ``s``, restricted to merging whole k-means leaves (which makes it
   cost O(#leaves^2) instead of O(n^2)). A small leaf (e.g. one outlier pair) gets no undue weight:
   its mean is not re-normalised. A cache of each row's best partner keeps a
   merge ``O(#leaves)`` in the usual case.
5. Levels. Stop the merging at each requested number of clusters ``m_1 < m_2 < ... < m_L`` (e.g.
   ``[4, 16, 64]``, coarse to fine) and record the partition of the leaves. Because clusters only
   merge, every cluster of level ``l`` lies inside exactly one cluster of level ``l - 1``.
6. Numbering. At each level clusters are numbered by decreasing pair count (ties: lowest leaf).
7. Points inherit the path of their leaf: ``assignment_l[i] = label_l[leaf[i]]``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def cross_modal_affinity(image_means: np.ndarray, text_means: np.ndarray,
                         weights: Sequence[float]) -> np.ndarray:
    """Leaf-to-leaf affinity ``A`` of step 3 from the leaves' mean unit features (float64, symmetric)."""
    w_ii, w_tt, w_it = (float(w) for w in weights)
    if min(w_ii, w_tt, w_it) < 0 or w_ii + w_tt + w_it <= 0:
        raise ValueError(f"affinity weights (w_ii, w_tt, w_it) must be >= 0 with a positive sum, got {tuple(weights)}")
    image = image_means.astype(np.float64)
    text = text_means.astype(np.float64)
    cross = image @ text.T
    affinity = w_ii * (image @ image.T) + w_tt * (text @ text.T) + w_it * 0.5 * (cross + cross.T)
    return affinity / (w_ii + w_tt + w_it)


def _number_by_size(representative: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Relabel leaf -> representative as leaf -> 0..m-1, largest cluster first."""
    roots, leaf_labels = np.unique(representative, return_inverse=True)
    cluster_sizes = np.bincount(leaf_labels, weights=sizes)
    first_leaf = np.array([np.flatnonzero(representative == root)[0] for root in roots])
    order = np.lexsort((first_leaf, -cluster_sizes))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    return rank[leaf_labels]


def average_linkage_levels(affinity: np.ndarray, sizes: np.ndarray,
                           level_sizes: Sequence[int]) -> list[np.ndarray]:
    """Leaf labels at each requested number of clusters (steps 4-6), coarse to fine like ``level_sizes``."""
    num_leaves = affinity.shape[0]
    wanted = set(int(m) for m in level_sizes)
    if min(wanted) < 1 or max(wanted) > num_leaves:
        raise ValueError(f"cluster counts {sorted(wanted)} must lie in [1, {num_leaves}] (the number of leaves)")
    linkage = affinity.astype(np.float64, copy=True)
    np.fill_diagonal(linkage, -np.inf)
    weight = sizes.astype(np.float64, copy=True)
    representative = np.arange(num_leaves)
    alive = np.ones(num_leaves, dtype=bool)
    best = np.argmax(linkage, axis=1)
    best_value = linkage[np.arange(num_leaves), best]

    partitions: dict[int, np.ndarray] = {}
    num_clusters = num_leaves
    while True:
        if num_clusters in wanted:
            partitions[num_clusters] = _number_by_size(representative, sizes)
        if num_clusters == min(wanted):
            break
        keep = int(np.argmax(np.where(alive, best_value, -np.inf)))
        absorbed = int(best[keep])
        merged = (weight[keep] * linkage[keep] + weight[absorbed] * linkage[absorbed]) / (
            weight[keep] + weight[absorbed])
        merged[[keep, absorbed]] = -np.inf
        merged[~alive] = -np.inf
        linkage[keep, :] = merged
        linkage[:, keep] = merged
        linkage[absorbed, :] = -np.inf
        linkage[:, absorbed] = -np.inf
        weight[keep] += weight[absorbed]
        alive[absorbed] = False
        representative[representative == absorbed] = keep
        num_clusters -= 1

        best_value[absorbed] = -np.inf
        stale = alive & ((best == keep) | (best == absorbed))
        stale[keep] = True
        for row in np.flatnonzero(stale):
            best[row] = int(np.argmax(linkage[row]))
            best_value[row] = linkage[row, best[row]]
        improved = alive & (merged > best_value)
        best[improved] = keep
        best_value[improved] = merged[improved]
    return [partitions[int(m)] for m in level_sizes]


def parent_map(child_labels: np.ndarray, parent_labels: np.ndarray, num_children: int) -> np.ndarray:
    """``parent[c]`` = the coarser cluster holding child cluster ``c`` (labels are per leaf)."""
    parent = np.full(num_children, -1, dtype=np.int64)
    parent[child_labels] = parent_labels
    return parent
