"""GRAM for any prompt trainer: start from the meta-learned prompts, regulate every prompt gradient.

``class CoOp_GRAM(GRAMMixin, CoOp)`` is a whole GRAM trainer: after the baseline builds its model
and optimizer, the mixin loads ``TRAINER.GRAM.META_CKPT``, copies the prompt initialization into
the model's prompt tensors (the parameters left trainable by the baseline) and installs the frozen
regulator psi_phi as a pre-step hook on every registered optimizer that updates prompt tensors.
The hook rewrites ``.grad`` of each prompt tensor as ``psi(grad)`` right before the optimizer
step, so it applies whatever path the baseline takes to its step (plain backward, AMP's
GradScaler, several optimizers), and everything else stays the baseline's.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from trainers.backbone.prompt_trainer import trainable_prompt_parameters

from .meta_checkpoint import MetaCheckpoint, check_compatible, copy_prompt_init, load_meta_checkpoint


class GradientRegulationHook:
    """Optimizer pre-step hook applying a frozen regulator to the prompt gradients."""

    def __init__(self, regulator: nn.Module, prompt_params: Dict[str, nn.Parameter]):
        self.regulator = regulator
        self.prompt_params = prompt_params

    @torch.no_grad()
    def __call__(self, optimizer, args, kwargs) -> None:
        grads = {n: p.grad.float() for n, p in self.prompt_params.items() if p.grad is not None}
        if not grads:
            return
        regulated, _ = self.regulator(grads)
        for name, grad in regulated.items():
            param = self.prompt_params[name]
            param.grad.copy_(grad.to(param.grad.dtype))


def prompt_optimizers(optimizers, prompt_params: Dict[str, nn.Parameter]) -> list:
    """The optimizers that update prompt tensors (ProMetaR's v-net optimizer, for one, does not)."""
    prompt_ids = {id(p) for p in prompt_params.values()}
    return [optimizer for optimizer in optimizers if optimizer is not None
            and any(id(p) in prompt_ids for group in optimizer.param_groups for p in group["params"])]


def clip_fingerprint_of(cfg) -> Optional[str]:
    from trainers.backbone.clip_loader import checkpoint_fingerprint

    return checkpoint_fingerprint(cfg.MODEL.BACKBONE.NAME)


class GRAMMixin:
    """Put first in the bases of a GRAM trainer: ``class X_GRAM(GRAMMixin, X)``."""

    meta_checkpoint: MetaCheckpoint
    uses_training_regulator = True  # install psi_phi on the training optimizers (TPT_GRAM: no)

    def build_model(self) -> None:
        super().build_model()
        gram_cfg = self.cfg.TRAINER.GRAM
        path = gram_cfg.META_CKPT
        self.meta_checkpoint = load_meta_checkpoint(path, allow_pickle=self.cfg.TRAIN.ALLOW_PICKLED_CHECKPOINTS)
        prompt_params = trainable_prompt_parameters(self.model)
        shapes = {name: tuple(param.shape) for name, param in prompt_params.items()}
        check_compatible(self.meta_checkpoint, path, clip_fingerprint_of(self.cfg), shapes, type(self).__name__)
        if gram_cfg.LOAD_INIT:
            copy_prompt_init(self.meta_checkpoint, prompt_params)
            print(f"GRAM: prompts initialized from the meta checkpoint {path}")
        if gram_cfg.REGULATE and self.uses_training_regulator:
            regulator = self.meta_checkpoint.build_regulator().to(self.device)
            hook = GradientRegulationHook(regulator, prompt_params)
            for optimizer in prompt_optimizers(self._optims.values(), prompt_params):
                optimizer.register_step_pre_hook(hook)
            print(f"GRAM: prompt gradients regulated by the meta-learned {self.meta_checkpoint.regulator_config['kind']} regulator")
