"""Probability sharpening, one-hot labels, loss-weight ramp-ups and EMA model updates."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["sharpen_prob", "create_onehot", "sigmoid_rampup", "linear_rampup", "ema_model_update"]


def sharpen_prob(p: torch.Tensor, temperature: float = 2) -> torch.Tensor:
    """Raise each row of probabilities to ``temperature`` and renormalize."""
    p = p.pow(temperature)
    return p / p.sum(1, keepdim=True)


def create_onehot(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N,) labels -> (N, num_classes) float one-hot on the labels' device."""
    return F.one_hot(label.long(), num_classes).float()


def sigmoid_rampup(current: float, rampup_length: int) -> float:
    """``exp(-5 (1 - t)^2)`` with ``t = clip(current / rampup_length, 0, 1)``."""
    if rampup_length <= 0:
        raise ValueError("rampup_length must be positive")
    phase = 1.0 - min(max(current, 0.0), rampup_length) / rampup_length
    return float(math.exp(-5.0 * phase * phase))


def linear_rampup(current: float, rampup_length: int) -> float:
    """``clip(current / rampup_length, 0, 1)``."""
    if rampup_length <= 0:
        raise ValueError("rampup_length must be positive")
    return float(min(max(current / rampup_length, 0.0), 1.0))


@torch.no_grad()
def ema_model_update(model: nn.Module, ema_model: nn.Module, alpha: float) -> None:
    """``ema = alpha * ema + (1 - alpha) * model`` for every parameter."""
    for ema_param, param in zip(ema_model.parameters(), model.parameters()):
        ema_param.mul_(alpha).add_(param, alpha=1 - alpha)
