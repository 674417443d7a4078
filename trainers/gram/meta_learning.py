"""GRAM's bi-level meta-learning of a prompt initialization theta and a regulator psi_phi.

For a task with a support batch S and a query batch Q drawn from two different clusters:

* inner loop (k steps):  theta_{j+1} = theta_j - alpha * psi_phi(grad L_S(theta_j)), theta_0 = theta
* outer objective:       L_Q(theta_k) + lambda_c * mean_t (c_t - s)^2

where ``c_t`` is the regulator's mixing coefficient for prompt tensor ``t`` at the last inner step and
``s`` in [0, 1] is the support/query similarity ((1 + cos(prototype_S, prototype_Q)) / 2, the
domain similarity of the two clusters written by the clustering stage; optionally averaged with
(1 + cos(grad L_S, grad L_Q)) / 2 at theta). The outer gradient updates theta and phi, averaged
over a meta-batch of tasks.

Orders: ``second_order`` differentiates through the inner gradients
(``torch.autograd.grad(create_graph=True)``); ``first_order`` treats each inner gradient as a
constant, so d theta_k / d theta = I (first-order MAML) while phi still receives its exact gradient
through psi_phi(g) with g held fixed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from trainers.backbone.attention import twice_differentiable
from trainers.backbone.prompt_trainer import TensorDict

from .task_loss import LossFn


@dataclass
class MetaTask:
    """One meta-task: support and query batches (from different clusters) and their similarity."""

    support: Any
    query: Any
    similarity: Optional[float] = None  # cosine of the two clusters' prototypes, in [-1, 1]


@dataclass
class MetaLearningSettings:
    inner_lr: float = 0.1
    inner_steps: int = 1
    first_order: bool = False
    consistency_weight: float = 0.1
    gradient_similarity: bool = False  # also use cos(grad L_S, grad L_Q) in the similarity target


def _flat_cosine(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> Tensor:
    va = torch.cat([a[name].reshape(-1) for name in a])
    vb = torch.cat([b[name].reshape(-1) for name in a])
    return torch.nn.functional.cosine_similarity(va, vb, dim=0)


def inner_adapt(params: Mapping[str, Tensor], loss_fn: LossFn, support: Any, regulator: nn.Module,
                settings: MetaLearningSettings) -> Tuple[TensorDict, TensorDict, List[float], TensorDict]:
    """Run the k regulated inner steps.

    Returns the adapted tensors, the last step's mixing coefficients, the support losses and the
    raw support gradient at ``params`` (detached).
    """
    create_graph = not settings.first_order
    names = list(params)
    adapted: TensorDict = dict(params)
    coefficients: TensorDict = {}
    support_losses: List[float] = []
    first_grads: TensorDict = {}
    for step in range(settings.inner_steps):
        loss = loss_fn(adapted, support)
        grads = torch.autograd.grad(loss, [adapted[n] for n in names], create_graph=create_graph)
        raw = {n: (g if create_graph else g.detach()) for n, g in zip(names, grads)}
        if step == 0:
            first_grads = {n: g.detach() for n, g in raw.items()}
        regulated, coefficients = regulator(raw)
        adapted = {n: adapted[n] - settings.inner_lr * regulated[n] for n in names}
        support_losses.append(float(loss.detach()))
    return adapted, coefficients, support_losses, first_grads


def similarity_target(task: MetaTask, params: Mapping[str, Tensor], loss_fn: LossFn,
                      support_grads: Mapping[str, Tensor], settings: MetaLearningSettings) -> Optional[Tensor]:
    """The value in [0, 1] the mixing coefficients are pulled toward, or None when unknown."""
    parts: List[Tensor] = []
    if task.similarity is not None:
        parts.append(torch.as_tensor((1.0 + float(task.similarity)) / 2.0))
    if settings.gradient_similarity:
        query_loss = loss_fn(params, task.query)
        query_grads = torch.autograd.grad(query_loss, list(params.values()))
        cosine = _flat_cosine(support_grads, dict(zip(params, (g.detach() for g in query_grads))))
        parts.append((1.0 + cosine.detach()) / 2.0)
    if not parts:
        return None
    return torch.stack([p.float() for p in parts]).mean()


def meta_objective(params: Mapping[str, Tensor], task: MetaTask, loss_fn: LossFn, regulator: nn.Module,
                   settings: MetaLearningSettings) -> Tuple[Tensor, Dict[str, float]]:
    """The outer loss of one task as a differentiable function of ``params`` and phi."""
    with twice_differentiable(not settings.first_order):
        return _meta_objective(params, task, loss_fn, regulator, settings)


def _meta_objective(params: Mapping[str, Tensor], task: MetaTask, loss_fn: LossFn, regulator: nn.Module,
                    settings: MetaLearningSettings) -> Tuple[Tensor, Dict[str, float]]:
    adapted, coefficients, support_losses, support_grads = inner_adapt(params, loss_fn, task.support,
                                                                       regulator, settings)
    query_loss = loss_fn(adapted, task.query)
    loss = query_loss
    stats = {"support_loss": support_losses[0], "query_loss": float(query_loss.detach())}
    target = None
    if settings.consistency_weight > 0 and coefficients:
        target = similarity_target(task, params, loss_fn, support_grads, settings)
    if target is not None:
        coefficient = torch.stack([c.reshape(()) for c in coefficients.values()])
        penalty = ((coefficient - target.to(coefficient)) ** 2).mean()
        loss = loss + settings.consistency_weight * penalty
        stats["consistency"] = float(penalty.detach())
        stats["mixing"] = float(coefficient.detach().mean())
    return loss, stats


class MetaLearner:
    """Owns theta (the prompt init, as leaf parameters) and psi_phi, and takes outer steps."""

    def __init__(self, prompt_params: Mapping[str, nn.Parameter], regulator: nn.Module, loss_fn: LossFn,
                 settings: MetaLearningSettings):
        self.prompt_params = dict(prompt_params)
        self.regulator = regulator
        self.loss_fn = loss_fn
        self.settings = settings

    def meta_gradients(self, tasks: Sequence[MetaTask], meta_batch_size: Optional[int] = None) -> Dict[str, float]:
        """Accumulate this share of the meta-gradient (each task's loss over ``meta_batch_size``, by default
        ``len(tasks)``) into ``.grad``; return the stats summed the same way."""
        size = meta_batch_size or len(tasks)
        totals: Dict[str, float] = {}
        for task in tasks:
            loss, stats = meta_objective(self.prompt_params, task, self.loss_fn, self.regulator, self.settings)
            (loss / size).backward()
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + value / size
        return totals

    def step(self, tasks: Sequence[MetaTask], optimizer: torch.optim.Optimizer,
             meta_batch_size: Optional[int] = None, reduce: Optional[Callable[[List[Tensor]], None]] = None
             ) -> Dict[str, float]:
        """One outer update of theta and phi from a meta-batch of tasks.

        Data-parallel: each process passes its share of the meta-batch, the whole ``meta_batch_size`` and
        ``reduce``, an in-place sum over the processes (``parallel.distributed.all_reduce_sum_``), applied to
        the gradients and the stats before the (identical) optimizer step on every process.
        """
        optimizer.zero_grad(set_to_none=True)
        stats = self.meta_gradients(tasks, meta_batch_size)
        if reduce is not None:
            stats = self._reduce(optimizer, stats, reduce)
        optimizer.step()
        return stats

    @staticmethod
    def _reduce(optimizer: torch.optim.Optimizer, stats: Dict[str, float],
                reduce: Callable[[List[Tensor]], None]) -> Dict[str, float]:
        """Sum gradients and stats over the processes; a parameter no process has a gradient for keeps
        ``grad=None`` (so the optimizer skips it exactly as in one process)."""
        params = [p for group in optimizer.param_groups for p in group["params"]]
        device = params[0].device
        keys = sorted(stats)
        counts = torch.tensor([float(p.grad is not None) for p in params] + [stats[key] for key in keys],
                              dtype=torch.float64, device=device)
        reduce([counts])
        for param in params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        reduce([param.grad for param in params])
        for param, count in zip(params, counts[:len(params)].tolist()):
            if count == 0:
                param.grad = None
        return dict(zip(keys, counts[len(params):].tolist()))
