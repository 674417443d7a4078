"""``TRAINER.<METHOD>.PREC`` handling: fp16, fp32 or amp, as in CoOp.

fp16 keeps the half-precision weights ``clip.model.build_model`` produces; fp32 and amp cast
CLIP to float32 (amp then runs the forward under ``torch.autocast`` with a gradient scaler).
Half precision and autocast are GPU features here: on a CPU, fp16 and amp fall back to fp32
with a warning, so every path runs (and is tested) on a CPU.
"""
import contextlib
import warnings
from typing import ContextManager, Optional

import torch
from torch import nn

PRECISIONS = ("fp16", "fp32", "amp")


class PrecisionFallbackWarning(UserWarning):
    """A requested precision is not available on this device; fp32 is used instead."""


def check_precision(prec: str) -> None:
    """Raise a one-line ValueError unless ``prec`` is fp16, fp32 or amp."""
    if prec not in PRECISIONS:
        raise ValueError(f"PREC must be one of {', '.join(PRECISIONS)}, got {prec!r}")


def resolve_precision(prec: str, device: torch.device) -> str:
    """The precision actually used on ``device``: ``prec``, or fp32 (with a warning) on a CPU."""
    check_precision(prec)
    if prec != "fp32" and torch.device(device).type == "cpu":
        warnings.warn(f"PREC={prec} is not supported on the CPU; using fp32", PrecisionFallbackWarning, stacklevel=2)
        return "fp32"
    return prec


def apply_precision(clip_model: nn.Module, prec: str) -> nn.Module:
    """Cast CLIP for ``prec`` (fp32/amp: float32 weights; fp16: as built); returns the model."""
    check_precision(prec)
    if prec in ("fp32", "amp"):
        clip_model.float()
    return clip_model


def autocast_context(prec: str, device: torch.device) -> ContextManager:
    """``torch.autocast`` for amp, a no-op context otherwise."""
    if prec == "amp":
        return torch.autocast(device_type=torch.device(device).type)
    return contextlib.nullcontext()


def make_grad_scaler(prec: str, device: torch.device) -> Optional[torch.amp.GradScaler]:
    """A gradient scaler for amp, None otherwise."""
    if prec == "amp":
        return torch.amp.GradScaler(torch.device(device).type)
    return None
