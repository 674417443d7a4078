"""The gradient regulating function psi_phi of GRAM, one small module per prompt tensor.

GRAM (ICCV 2023) meta-learns a function that rewrites raw prompt gradients into directions that
transfer across domains. The papers leave its exact form open; this toolbox follows the family of
the same group's SUPMER regulator, with these choices (each a documented decision, not a quote):

* A prompt tensor of shape ``(..., D)`` is regulated row by row: its gradient ``G`` is viewed as
  rows ``g_i`` of length ``D`` (a 1-D tensor is one row).
* Transform ``T_phi``: a residual low-rank map on the unit direction of each row,
  ``u = g / |g|``, ``t = u + U tanh(V u + b)``, rescaled to the row's norm:
  ``T(g) = |g| * t / |t|``. ``U`` starts at zero, so ``T`` starts as the identity and the
  regulator's initial output equals the raw gradient. ``T`` preserves every row's norm exactly.
* Mixing: ``psi(G) = (1 - c) * T(G) + c * G`` with one coefficient per tensor,
  ``c = sigmoid(w2 . tanh(W1 e + b1) + b2)``, where the task embedding ``e`` is the mean of the
  rows' unit directions. ``e`` is computed from the gradient itself, so psi needs nothing but the
  gradient and is defined in meta-training, in downstream fine-tuning and at test time alike.
  Because ``psi`` is a convex combination of two vectors of norm ``|g|``, a regulated row is never
  longer than the raw row.
* The meta-learner may pull ``c`` toward the support/query similarity (see ``meta_learning``).

``IdentityRegulator`` (``psi(G) = G``) is the ablation and the reference for equivalence tests.
"""
from __future__ import annotations

from typing import Mapping, Tuple

import torch
from torch import Tensor, nn

from trainers.backbone.prompt_trainer import TensorDict

EPS = 1e-12



def module_key(param_name: str) -> str:
    """ModuleDict keys may not contain dots: ``prompt_learner.ctx`` -> ``prompt_learner__ctx``."""
    return param_name.replace(".", "__")


def as_rows(tensor: Tensor) -> Tensor:
    return tensor.reshape(1, -1) if tensor.dim() <= 1 else tensor.reshape(-1, tensor.shape[-1])


class TensorRegulator(nn.Module):
    """psi for one prompt tensor whose rows have length ``dim``."""

    def __init__(self, dim: int, rank: int = 16, gate_hidden: int = 16):
        super().__init__()
        self.dim = dim
        self.down = nn.Linear(dim, rank)
        self.up = nn.Linear(rank, dim, bias=False)
        nn.init.zeros_(self.up.weight)
        self.gate = nn.Sequential(nn.Linear(dim, gate_hidden), nn.Tanh(), nn.Linear(gate_hidden, 1))

    def transform(self, rows: Tensor) -> Tensor:
        """``T_phi``: residual low-rank map of each row's direction, keeping each row's norm."""
        norms = rows.norm(dim=-1, keepdim=True)
        unit = rows / norms.clamp_min(EPS)
        moved = unit + self.up(torch.tanh(self.down(unit)))
        return moved / moved.norm(dim=-1, keepdim=True).clamp_min(EPS) * norms

    def mixing_coefficient(self, rows: Tensor) -> Tensor:
        """``c`` in (0, 1) from the task embedding (mean unit direction of the rows)."""
        unit = rows / rows.norm(dim=-1, keepdim=True).clamp_min(EPS)
        return torch.sigmoid(self.gate(unit.mean(dim=0))).squeeze(-1)

    def forward(self, grad: Tensor) -> Tuple[Tensor, Tensor]:
        rows = as_rows(grad)
        coefficient = self.mixing_coefficient(rows)
        regulated = (1 - coefficient) * self.transform(rows) + coefficient * rows
        return regulated.reshape(grad.shape), coefficient


class GradientRegulator(nn.Module):
    """psi_phi over a set of named prompt tensors; call it on a dict of gradients."""

    kind = "lowrank"

    def __init__(self, prompt_shapes: Mapping[str, Tuple[int, ...]], rank: int = 16, gate_hidden: int = 16):
        super().__init__()
        self.prompt_shapes = {name: tuple(shape) for name, shape in prompt_shapes.items()}
        self.rank = rank
        self.gate_hidden = gate_hidden
        self.per_tensor = nn.ModuleDict(
            {module_key(name): TensorRegulator(shape[-1] if shape else 1, rank, gate_hidden)
             for name, shape in self.prompt_shapes.items()}
        )

    def regulator_for(self, name: str) -> TensorRegulator:
        key = module_key(name)
        if key not in self.per_tensor:
            raise KeyError(f"the regulator has no entry for prompt tensor '{name}' "
                           f"(it knows: {', '.join(self.prompt_shapes)})")
        return self.per_tensor[key]

    def forward(self, grads: Mapping[str, Tensor]) -> Tuple[TensorDict, TensorDict]:
        """Regulated gradients and the mixing coefficient of each tensor."""
        regulated, coefficients = {}, {}
        for name, grad in grads.items():
            regulated[name], coefficients[name] = self.regulator_for(name)(grad)
        return regulated, coefficients

    def config(self) -> dict:
        return {"kind": self.kind, "prompt_shapes": {k: list(v) for k, v in self.prompt_shapes.items()},
                "rank": self.rank, "gate_hidden": self.gate_hidden}


class IdentityRegulator(nn.Module):
    """psi(G) = G: the ablation, and plain prompt tuning when plugged into the GRAM machinery.

    It has no mixing coefficients, so no consistency penalty applies to it.
    """

    kind = "identity"

    def __init__(self, prompt_shapes: Mapping[str, Tuple[int, ...]] | None = None, **_: object):
        super().__init__()
        self.prompt_shapes = {name: tuple(shape) for name, shape in (prompt_shapes or {}).items()}

    def forward(self, grads: Mapping[str, Tensor]) -> Tuple[TensorDict, TensorDict]:
        return dict(grads), {}

    def config(self) -> dict:
        return {"kind": self.kind, "prompt_shapes": {k: list(v) for k, v in self.prompt_shapes.items()}}


REGULATORS = {"lowrank": GradientRegulator, "identity": IdentityRegulator}


def build_regulator(kind: str, prompt_shapes: Mapping[str, Tuple[int, ...]], **kwargs) -> nn.Module:
    """Build a regulator by name (``lowrank`` or ``identity``)."""
    if kind not in REGULATORS:
        raise ValueError(f"unknown regulator '{kind}'; choose one of {', '.join(REGULATORS)}")
    return REGULATORS[kind](prompt_shapes, **kwargs)


def regulator_from_config(config: Mapping) -> nn.Module:
    """Rebuild a regulator from the ``config()`` it saved."""
    options = {k: v for k, v in config.items() if k not in ("kind", "prompt_shapes")}
    shapes = {name: tuple(shape) for name, shape in config["prompt_shapes"].items()}
    return build_regulator(config["kind"], shapes, **options)
