"""GRAM's meta-task loss on image-text pairs: captions stand in for class names.

A meta-task batch is N image-text pairs. The prompt method builds its text side as
``prompt(theta) + caption`` exactly as it will later build ``prompt(theta) + class name``, and the
loss is CLIP's contrastive loss over the batch (image->text and text->image cross-entropy with
the diagonal as targets). During meta-training the query batch may be mixed with the support
batch (mixup across domains): each query image is blended with a support image, its caption set
grows to query + support captions, and its target becomes the soft pair (lambda, 1 - lambda);
a mixed batch is scored image->text only, since a blended image has no single caption.

A model takes part by exposing ``pair_logits(images, texts) -> [N_images, N_texts]`` (images may
be pixels or cached image features, whatever the model's forward accepts).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

LossFn = Callable[[Mapping[str, Tensor], "PairBatch"], Tensor]


@dataclass
class PairBatch:
    """Images (pixels or features) with their captions; ``targets`` is set for mixed batches."""

    images: Tensor
    texts: List[str]
    targets: Optional[Tensor] = None
    ids: List[int] = field(default_factory=list)

    def __len__(self) -> int:
        return self.images.shape[0]


def contrastive_pair_loss(logits: Tensor, targets: Optional[Tensor] = None) -> Tensor:
    """Symmetric CLIP loss on matched pairs, or image->text soft cross-entropy on mixed pairs."""
    if targets is None:
        labels = torch.arange(logits.shape[0], device=logits.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def mix_query_with_support(query: PairBatch, support: PairBatch, alpha: float,
                           rng: np.random.Generator) -> PairBatch:
    """Mixup across domains: blend each query image with a random support image (lambda ~ Beta)."""
    if alpha <= 0:
        return query
    n_query, n_support = len(query), len(support)
    lam = torch.as_tensor(rng.beta(alpha, alpha, size=n_query), dtype=query.images.dtype,
                          device=query.images.device)
    partners = torch.as_tensor(rng.integers(n_support, size=n_query), device=query.images.device)
    shape = (n_query,) + (1,) * (query.images.dim() - 1)
    images = lam.view(shape) * query.images + (1 - lam.view(shape)) * support.images[partners]
    targets = query.images.new_zeros(n_query, n_query + n_support)
    rows = torch.arange(n_query, device=query.images.device)
    targets[rows, rows] = lam
    targets[rows, n_query + partners] += 1 - lam
    return PairBatch(images, list(query.texts) + list(support.texts), targets, list(query.ids))


class _PairLogits(nn.Module):
    """Lets ``functional_call`` run a model's ``pair_logits`` with substituted prompt tensors."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: Tensor, texts: Sequence[str]) -> Tensor:
        return self.model.pair_logits(images, texts)


def make_pair_logits(model: nn.Module) -> Callable[[Mapping[str, Tensor], Tensor, Sequence[str]], Tensor]:
    """``f(prompt_params, images, texts)``: ``model.pair_logits`` with the given prompt tensors."""
    wrapper = _PairLogits(model)

    def pair_logits(params: Mapping[str, Tensor], images: Tensor, texts: Sequence[str]) -> Tensor:
        substituted = {f"model.{name}": value for name, value in params.items()}
        return functional_call(wrapper, substituted, (images, texts))

    return pair_logits


def make_pair_loss(model: nn.Module) -> LossFn:
    """A loss ``f(prompt_params, batch)`` evaluating ``model`` with the given prompt tensors."""
    pair_logits = make_pair_logits(model)

    def pair_loss(params: Mapping[str, Tensor], batch: PairBatch) -> Tensor:
        return contrastive_pair_loss(pair_logits(params, batch.images, batch.texts), batch.targets)

    return pair_loss
