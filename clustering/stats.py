"""Sufficient statistics of clusters of image-text pairs, and what follows from them.

For each cluster: the number of pairs, the sums of the unit image and unit text features, and the
sum of the per-pair image-text cosines. Statistics of the k-means leaves are gathered in one pass
over the data; every coarser cluster is a union of leaves, so its statistics are sums of leaf
statistics (``merge``) and no further pass over the data is needed. Prototypes and the raw terms of
the structure complexity are read off these sums.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .features import JOINT_SCALE


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass
class ClusterStats:
    count: np.ndarray  # (m,) int64
    image_sum: np.ndarray  # (m, d) float64, sum of unit image features
    text_sum: np.ndarray  # (m, d) float64, sum of unit text features
    pair_cosine_sum: np.ndarray  # (m,) float64, sum of <image, text> over the cluster's pairs

    @classmethod
    def zeros(cls, num_clusters: int, dim: int) -> "ClusterStats":
        return cls(np.zeros(num_clusters, np.int64), np.zeros((num_clusters, dim)),
                   np.zeros((num_clusters, dim)), np.zeros(num_clusters))

    def accumulate(self, labels: np.ndarray, image_unit: np.ndarray, text_unit: np.ndarray) -> None:
        """Add a chunk of unit features whose cluster labels are ``labels``."""
        num_clusters = self.count.shape[0]
        rows = torch.from_numpy(labels.astype(np.int64, copy=False))
        membership = torch.sparse_coo_tensor(torch.stack([rows, torch.arange(rows.shape[0])]),
                                             torch.ones(rows.shape[0]), (num_clusters, rows.shape[0]),
                                             check_invariants=False)
        for total, chunk in ((self.image_sum, image_unit), (self.text_sum, text_unit)):
            total += torch.sparse.mm(membership, torch.from_numpy(chunk)).numpy()
        self.count += np.bincount(labels, minlength=num_clusters)
        self.pair_cosine_sum += np.bincount(labels, weights=np.einsum("ij,ij->i", image_unit, text_unit),
                                            minlength=num_clusters)

    def merge(self, labels: np.ndarray, num_clusters: int) -> "ClusterStats":
        """Statistics of the clusters formed by grouping cluster ``i`` into ``labels[i]``."""
        membership = np.zeros((num_clusters, labels.shape[0]))
        membership[labels, np.arange(labels.shape[0])] = 1.0
        return ClusterStats(np.bincount(labels, weights=self.count, minlength=num_clusters).astype(np.int64),
                            membership @ self.image_sum, membership @ self.text_sum,
                            membership @ self.pair_cosine_sum)

    def subset(self, keep: np.ndarray) -> "ClusterStats":
        """Statistics of the clusters selected by the boolean or index array ``keep``."""
        return ClusterStats(self.count[keep], self.image_sum[keep], self.text_sum[keep],
                            self.pair_cosine_sum[keep])

    def _mean(self, total: np.ndarray) -> np.ndarray:
        return total / np.maximum(self.count, 1)[:, None]

    def image_means(self) -> np.ndarray:
        """Mean unit image feature per cluster (not re-normalised), float64 (m, d)."""
        return self._mean(self.image_sum)

    def text_means(self) -> np.ndarray:
        """Mean unit text feature per cluster (not re-normalised), float64 (m, d)."""
        return self._mean(self.text_sum)

    def image_prototypes(self) -> np.ndarray:
        """Normalised mean image feature per cluster, float32 (m, d)."""
        return _unit_rows(self.image_sum)

    def text_prototypes(self) -> np.ndarray:
        """Normalised mean text feature per cluster, float32 (m, d)."""
        return _unit_rows(self.text_sum)

    def joint_prototypes(self) -> np.ndarray:
        """Normalised mean joint feature per cluster, float32 (m, 2d)."""
        return _unit_rows(np.concatenate([self.image_sum, self.text_sum], axis=1) * float(JOINT_SCALE))

    def dispersion(self) -> np.ndarray:
        """Spread of each cluster: ``1 - (|mean image| + |mean text|) / 2`` (0 when all pairs coincide)."""
        image_resultant = np.linalg.norm(self.image_means(), axis=1)
        text_resultant = np.linalg.norm(self.text_means(), axis=1)
        return 1.0 - 0.5 * (image_resultant + text_resultant)

    def disagreement(self) -> np.ndarray:
        """Image-text disagreement of each cluster: ``1 - mean cosine of its pairs``."""
        return 1.0 - self.pair_cosine_sum / np.maximum(self.count, 1)
