"""Pairwise distance matrices between two sets of feature vectors."""
import torch
import torch.nn.functional as F

__all__ = ["compute_distance_matrix", "cosine_distance", "euclidean_squared_distance"]


def euclidean_squared_distance(input1: torch.Tensor, input2: torch.Tensor) -> torch.Tensor:
    """(m, n) squared Euclidean distances between rows of ``input1`` (m, d) and ``input2`` (n, d)."""
    return torch.cdist(input1, input2).pow(2)


def cosine_distance(input1: torch.Tensor, input2: torch.Tensor) -> torch.Tensor:
    """(m, n) ``1 - cosine similarity`` between rows."""
    return 1 - F.normalize(input1, p=2, dim=1) @ F.normalize(input2, p=2, dim=1).t()


def compute_distance_matrix(input1: torch.Tensor, input2: torch.Tensor, metric: str = "euclidean") -> torch.Tensor:
    """Distance matrix with ``metric`` = ``euclidean`` (squared) or ``cosine``."""
    if input1.dim() != 2 or input2.dim() != 2 or input1.size(1) != input2.size(1):
        raise ValueError(f"Expected two 2-D inputs of equal width, got {tuple(input1.shape)} and {tuple(input2.shape)}")
    if metric == "euclidean":
        return euclidean_squared_distance(input1, input2)
    if metric == "cosine":
        return cosine_distance(input1, input2)
    raise ValueError(f'Unknown distance metric: {metric}. Please choose either "euclidean" or "cosine"')
