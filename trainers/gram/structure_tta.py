"""Structure-induced gradient regulation for test-time prompt tuning (GRAM's journal extension).

At test time only the unlabeled test image is available. TPT takes one entropy-minimisation step on
the prompt; GRAM regulates that step's gradient with a regulator that also sees where the test
image sits in the structure the clustering stage found in the meta-training corpus.

Formulation chosen here (the paper leaves the exact form open):

* Structure features ``s(x)``: for each hierarchy level ``l`` with image prototypes ``P_l`` and
  per-cluster structure complexity ``k_l``, the affinity ``a_l = softmax(cos(f(x), P_l) / tau)`` of
  the test image's CLIP feature to the clusters gives three numbers: the expected complexity
  ``a_l . k_l``, the top affinity ``max a_l`` and the normalised entropy ``H(a_l) / log |P_l|``.
  Concatenated over levels: ``s(x)`` of size ``3 L``.
* Regulator: the low-rank transform ``T_phi`` of ``regulator.TensorRegulator`` (norm-preserving),
  and per prompt tensor a mixing coefficient that reads both the gradient's task embedding and
  ``s(x)``: ``c = sigmoid(gate(e) + w_c . s(x))``, ``psi(G; x) = (1 - c) T(G) + c G``. ``w_c`` starts
  at zero, so before meta-training ``psi`` is the plain regulator. (No step-size output: TPT's
  AdamW step is invariant to the gradient's scale.)
* Meta-training (``TRAINER.GRAM.TTA``): on a task's query images, one regulated test-time step
  of the entropy ``H`` over the task's captions is scored by the supervised loss of the same image
  after the step, i.e. the regulated unsupervised step is trained to act like a supervised one.
  The step imitates AdamW's first step, ``lr * r / sqrt(r^2 + delta^2)`` elementwise for the
  regulated gradient ``r``, with ``delta = 0.1 * rms(r)`` instead of Adam's 1e-8 so that the step
  stays differentiable in phi (a smoothed sign).
"""
from __future__ import annotations

import math
from typing import List, Mapping, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers.backbone.prompt_trainer import TensorDict

from .regulator import EPS, TensorRegulator, as_rows, module_key


class StructureEncoder(nn.Module):
    """Maps image features to structure features ``s(x)`` from per-level prototypes and complexity."""

    def __init__(self, prototypes: Sequence[Tensor], complexity: Sequence[Tensor], temperature: float = 0.05):
        super().__init__()
        if len(prototypes) != len(complexity):
            raise ValueError("one complexity vector per prototype level is needed")
        self.levels = len(prototypes)
        self.temperature = temperature
        for level, (protos, comp) in enumerate(zip(prototypes, complexity)):
            self.register_buffer(f"prototypes_{level}", F.normalize(torch.as_tensor(protos).float(), dim=-1))
            self.register_buffer(f"complexity_{level}", torch.as_tensor(comp).float())

    @property
    def num_features(self) -> int:
        return 3 * self.levels

    def forward(self, image_features: Tensor) -> Tensor:
        feats = F.normalize(image_features.float(), dim=-1)
        parts: List[Tensor] = []
        for level in range(self.levels):
            protos = getattr(self, f"prototypes_{level}")
            comp = getattr(self, f"complexity_{level}")
            affinity = torch.softmax(feats @ protos.t() / self.temperature, dim=-1)
            entropy = -(affinity * affinity.clamp_min(EPS).log()).sum(-1) / math.log(max(protos.shape[0], 2))
            parts += [affinity @ comp, affinity.max(dim=-1).values, entropy]
        return torch.stack(parts, dim=-1)


class StructureInducedRegulator(nn.Module):
    """psi(G; s(x)) for a set of named prompt tensors."""

    kind = "structure"

    def __init__(self, prompt_shapes: Mapping[str, Tuple[int, ...]], num_structure_features: int,
                 rank: int = 16, gate_hidden: int = 16):
        super().__init__()
        self.prompt_shapes = {name: tuple(shape) for name, shape in prompt_shapes.items()}
        self.num_structure_features = num_structure_features
        self.rank, self.gate_hidden = rank, gate_hidden
        self.per_tensor = nn.ModuleDict({module_key(n): TensorRegulator(s[-1] if s else 1, rank, gate_hidden)
                                         for n, s in self.prompt_shapes.items()})
        self.structure_gate = nn.Linear(num_structure_features, len(self.prompt_shapes), bias=False)
        nn.init.zeros_(self.structure_gate.weight)

    def forward(self, grads: Mapping[str, Tensor], structure: Tensor) -> Tuple[TensorDict, TensorDict]:
        structure = structure.reshape(-1).float()
        gate_shift = self.structure_gate(structure)
        regulated, coefficients = {}, {}
        for index, name in enumerate(self.prompt_shapes):
            if name not in grads:
                continue
            module = self.per_tensor[module_key(name)]
            rows = as_rows(grads[name])
            unit = rows / rows.norm(dim=-1, keepdim=True).clamp_min(EPS)
            logit = module.gate(unit.mean(dim=0)).squeeze(-1) + gate_shift[index]
            coefficient = torch.sigmoid(logit)
            mixed = (1 - coefficient) * module.transform(rows) + coefficient * rows
            regulated[name] = mixed.reshape(grads[name].shape)
            coefficients[name] = coefficient
        return regulated, coefficients

    def config(self) -> dict:
        return {"kind": self.kind, "prompt_shapes": {k: list(v) for k, v in self.prompt_shapes.items()},
                "num_structure_features": self.num_structure_features, "rank": self.rank,
                "gate_hidden": self.gate_hidden}


def structure_encoder_from_split(split, temperature: float) -> StructureEncoder:
    """The structure encoder over a clustering split's image prototypes and complexity, all levels."""
    return StructureEncoder([torch.from_numpy(level.image_prototypes) for level in split.levels],
                            [torch.from_numpy(level.complexity) for level in split.levels], temperature)


def test_time_payload(regulator: StructureInducedRegulator, encoder: StructureEncoder) -> dict:
    """What the meta checkpoint stores to rebuild the test-time regulator."""
    levels = range(encoder.levels)
    return {"regulator_config": regulator.config(), "regulator_state": regulator.state_dict(),
            "prototypes": [getattr(encoder, f"prototypes_{i}").clone() for i in levels],
            "complexity": [getattr(encoder, f"complexity_{i}").clone() for i in levels],
            "temperature": encoder.temperature}


def load_test_time_regulator(payload: dict) -> Tuple[StructureInducedRegulator, StructureEncoder]:
    """Rebuild the frozen test-time regulator and its structure encoder from a meta checkpoint."""
    encoder = StructureEncoder(payload["prototypes"], payload["complexity"], payload["temperature"])
    config = dict(payload["regulator_config"])
    regulator = StructureInducedRegulator({n: tuple(s) for n, s in config.pop("prompt_shapes").items()},
                                          config["num_structure_features"], config["rank"], config["gate_hidden"])
    regulator.load_state_dict(payload["regulator_state"])
    regulator.requires_grad_(False)
    return regulator.eval(), encoder


def adam_like_first_step(direction: Tensor) -> Tensor:
    """AdamW's first update direction (elementwise sign), smoothed to stay differentiable."""
    delta = 0.1 * direction.pow(2).mean().sqrt().detach().clamp_min(EPS)
    return direction / torch.sqrt(direction.pow(2) + delta ** 2)


def entropy_step_objective(params: Mapping[str, Tensor], logits_fn, image_feature: Tensor, texts: List[str],
                           target: int, regulator: StructureInducedRegulator, structure: Tensor,
                           step_size: float) -> Tensor:
    """Supervised loss after one regulated entropy step on a single image (meta-training signal).

    ``logits_fn(params, image_feature, texts)`` gives the image's logits over ``texts``; the
    entropy gradient is taken at ``params`` and held fixed (only phi learns here).
    """
    logits = logits_fn(params, image_feature, texts)
    log_probs = logits.log_softmax(dim=-1)
    entropy = -(log_probs.exp() * log_probs).sum()
    grads = torch.autograd.grad(entropy, list(params.values()))
    regulated, _ = regulator({n: g.detach() for n, g in zip(params, grads)}, structure)
    stepped = {n: params[n].detach() - step_size * adam_like_first_step(regulated[n]) for n in params}
    adapted_logits = logits_fn(stepped, image_feature, texts)
    return F.cross_entropy(adapted_logits, torch.tensor([target], device=adapted_logits.device))
