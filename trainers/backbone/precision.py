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


def resolve_precision(prec: str, device: torch.device, key: str = "PREC") -> str:
    """The precision actually used on ``device``: ``prec``, or fp32 with a one-line warning (naming the
    config ``key``) where ``device`` cannot honour it: half precision and autocast on a CPU, fp16 on
    a GPU without half-precision support."""
    check_precision(prec)
    device = torch.device(device)
    reason = ""
    if prec != "fp32" and device.type == "cpu":
        reason = "half precision and autocast are GPU paths in this toolbox"
    elif prec != "fp32" and device.type == "cuda" and torch.cuda.get_device_capability(device)[0] < 6:
        reason = f"{torch.cuda.get_device_name(device)} has no fast half precision (compute capability < 6.0)"
    if reason:
        message = f"{key}={prec} cannot be honoured on {device.type}: {reason}; using fp32"
        warnings.warn(message, PrecisionFallbackWarning, stacklevel=2)
        print(message)
        return "fp32"
    return prec


def apply_precision(clip_model: nn.Module, prec: str) -> nn.Module:
    """Cast CLIP for ``prec`` (fp32/amp: float32 weights; fp16: as built); returns the model."""
    check_precision(prec)
    if prec in ("fp32", "amp"):
        clip_model.float()
    return clip_model


def keep_in_fp32(module: nn.Module) -> nn.Module:
    """Cast ``module``'s parameters (not its buffers) to float32, whatever CLIP's dtype; returns it.
    Learnable prompts kept so get float32 gradients and optimizer state; they are cast to CLIP's
    dtype where they enter the frozen encoders."""
    for param in module.parameters():
        param.data = param.data.float()
    return module


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
