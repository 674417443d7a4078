"""Attention kernels for steps that differentiate twice (MAML-style inner steps of GRAM and ProMetaR).

PyTorch's fused scaled-dot-product attention kernels have no double backward, so a second-order step
runs CLIP's attention on the math kernel; a first-order step keeps the fast kernels.
"""
from contextlib import nullcontext
from typing import ContextManager

from torch.nn.attention import SDPBackend, sdpa_kernel


def twice_differentiable(second_order: bool) -> ContextManager:
    """Fused attention kernels have no double backward: second-order steps use the math kernel."""
    return sdpa_kernel([SDPBackend.MATH]) if second_order else nullcontext()
