"""``build_optimizer(model, optim_cfg, param_groups=None)`` (Dassl semantics).

- ``param_groups`` given: optimize exactly those (``STAGED_LR`` is then ignored, with a warning).
- ``OPTIM.STAGED_LR``: the direct children of ``model`` named in ``OPTIM.NEW_LAYERS`` train at
  ``OPTIM.LR``; every other child ("base" layers) at ``OPTIM.LR * OPTIM.BASE_LR_MULT``.
- otherwise all parameters of ``model`` (or ``model`` itself when it is an iterable of tensors).
"""
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import torch
import torch.nn as nn

__all__ = ["AVAI_OPTIMS", "build_optimizer"]


def _adam_family(cls, **extra) -> Callable:
    return lambda params, cfg: cls(
        params, lr=cfg.LR, weight_decay=cfg.WEIGHT_DECAY, betas=(cfg.ADAM_BETA1, cfg.ADAM_BETA2), **extra
    )


OPTIMIZER_BUILDERS: Dict[str, Callable] = {
    "adam": _adam_family(torch.optim.Adam),
    "amsgrad": _adam_family(torch.optim.Adam, amsgrad=True),
    "radam": _adam_family(torch.optim.RAdam),
    "adamw": _adam_family(torch.optim.AdamW),
    "sgd": lambda params, cfg: torch.optim.SGD(
        params, lr=cfg.LR, momentum=cfg.MOMENTUM, weight_decay=cfg.WEIGHT_DECAY,
        dampening=cfg.SGD_DAMPNING, nesterov=cfg.SGD_NESTEROV,
    ),
    "rmsprop": lambda params, cfg: torch.optim.RMSprop(
        params, lr=cfg.LR, momentum=cfg.MOMENTUM, weight_decay=cfg.WEIGHT_DECAY, alpha=cfg.RMSPROP_ALPHA
    ),
}
AVAI_OPTIMS = list(OPTIMIZER_BUILDERS)


def _staged_param_groups(model: nn.Module, optim_cfg) -> List[Dict[str, Any]]:
    if not isinstance(model, nn.Module):
        raise TypeError("When STAGED_LR is True, model given to build_optimizer() must be an instance of nn.Module")
    if isinstance(model, nn.DataParallel):
        model = model.module
    new_layers = optim_cfg.NEW_LAYERS
    if isinstance(new_layers, str):
        new_layers = [new_layers]
    if not new_layers:
        warnings.warn("OPTIM.NEW_LAYERS is empty (STAGED_LR is useless)")
    child_names = [name for name, _ in model.named_children()]
    missing = [name for name in new_layers if name not in child_names]
    if missing:
        raise ValueError(f"OPTIM.NEW_LAYERS {missing} are not children of the model (children: {child_names})")
    base_params, new_params = [], []
    for name, module in model.named_children():
        (new_params if name in new_layers else base_params).extend(module.parameters())
    return [
        {"params": base_params, "lr": optim_cfg.LR * optim_cfg.BASE_LR_MULT},
        {"params": new_params},
    ]


def build_optimizer(
    model: Union[nn.Module, Iterable],
    optim_cfg,
    param_groups: Optional[Iterable] = None,
) -> torch.optim.Optimizer:
    """The optimizer named ``optim_cfg.NAME`` (adam, amsgrad, sgd, rmsprop, radam, adamw)."""
    name = optim_cfg.NAME
    if name not in OPTIMIZER_BUILDERS:
        raise ValueError(f"optim must be one of {AVAI_OPTIMS}, but got {name}")
    if param_groups is not None and optim_cfg.STAGED_LR:
        warnings.warn(
            "staged_lr will be ignored, if you need to use staged_lr, please bind it with param_groups yourself."
        )
    if param_groups is None:
        if optim_cfg.STAGED_LR:
            param_groups = _staged_param_groups(model, optim_cfg)
        elif isinstance(model, nn.Module):
            param_groups = model.parameters()
        else:
            param_groups = model
    return OPTIMIZER_BUILDERS[name](param_groups, optim_cfg)
