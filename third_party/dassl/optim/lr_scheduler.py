"""``build_lr_scheduler(optimizer, optim_cfg)``: single_step, multi_step or cosine, per epoch,
optionally preceded by ``OPTIM.WARMUP_EPOCH`` epochs of constant or linear warmup.

Schedules equal Dassl's. With warmup W (``WARMUP_RECOUNT=True``) epoch e < W trains at the
warmup LR (constant: ``WARMUP_CONS_LR``; linear: ``WARMUP_MIN_LR`` at e = 0, then
``LR * e / W``) and epoch e >= W at the wrapped scheduler's LR for epoch e - W (cosine:
``LR * (1 + cos(pi * (e - W) / MAX_EPOCH)) / 2``).

Unlike Dassl's, these schedulers take no ``verbose`` argument (removed from torch 2.7 on) and
store the wrapped scheduler as a nested state dict, so checkpoints load with
``torch.load(weights_only=True)``.
"""
from typing import Any, Dict, List

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, MultiStepLR, StepLR

__all__ = ["AVAI_SCHEDS", "ConstantWarmupScheduler", "LinearWarmupScheduler", "build_lr_scheduler"]

AVAI_SCHEDS = ["single_step", "multi_step", "cosine"]


class _BaseWarmupScheduler(LRScheduler):
    """Runs its own warmup schedule for ``warmup_epoch`` steps, then hands over to ``successor``."""

    def __init__(self, optimizer: torch.optim.Optimizer, successor: LRScheduler, warmup_epoch: int, last_epoch: int = -1):
        self.successor = successor
        self.warmup_epoch = warmup_epoch
        super().__init__(optimizer, last_epoch)

    def warmup_lrs(self) -> List[float]:
        raise NotImplementedError

    def get_lr(self) -> List[float]:
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        return self.warmup_lrs()

    def step(self, epoch=None) -> None:
        if self.last_epoch >= self.warmup_epoch:
            self.successor.step(epoch)
            self._last_lr = self.successor.get_last_lr()
        else:
            super().step(epoch)

    def state_dict(self) -> Dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "successor")}
        state["successor"] = self.successor.state_dict()
        return state

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        state = dict(state_dict)
        successor_state = state.pop("successor")
        if not isinstance(successor_state, dict):  # a whole scheduler object, as Dassl pickles it
            successor_state = successor_state.state_dict()
        self.successor.load_state_dict(successor_state)
        self.__dict__.update(state)


class ConstantWarmupScheduler(_BaseWarmupScheduler):
    """Warmup at a constant ``cons_lr``."""

    def __init__(self, optimizer, successor, warmup_epoch: int, cons_lr: float, last_epoch: int = -1):
        self.cons_lr = cons_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch)

    def warmup_lrs(self) -> List[float]:
        return [self.cons_lr for _ in self.base_lrs]


class LinearWarmupScheduler(_BaseWarmupScheduler):
    """Warmup from ``min_lr`` (step 0), then ``base_lr * step / warmup_epoch``."""

    def __init__(self, optimizer, successor, warmup_epoch: int, min_lr: float, last_epoch: int = -1):
        self.min_lr = min_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch)

    def warmup_lrs(self) -> List[float]:
        if self.last_epoch == 0:
            return [self.min_lr for _ in self.base_lrs]
        return [lr * self.last_epoch / self.warmup_epoch for lr in self.base_lrs]


def _main_scheduler(optimizer: torch.optim.Optimizer, optim_cfg) -> LRScheduler:
    name = optim_cfg.LR_SCHEDULER
    stepsize = optim_cfg.STEPSIZE
    if name == "single_step":
        if isinstance(stepsize, (list, tuple)):
            stepsize = stepsize[-1]
        if not isinstance(stepsize, int):
            raise TypeError(f"For single_step lr_scheduler, stepsize must be an integer, but got {type(stepsize)}")
        if stepsize <= 0:
            stepsize = optim_cfg.MAX_EPOCH
        return StepLR(optimizer, step_size=stepsize, gamma=optim_cfg.GAMMA)
    if name == "multi_step":
        if not isinstance(stepsize, (list, tuple)):
            raise TypeError(f"For multi_step lr_scheduler, stepsize must be a list, but got {type(stepsize)}")
        return MultiStepLR(optimizer, milestones=list(stepsize), gamma=optim_cfg.GAMMA)
    return CosineAnnealingLR(optimizer, float(optim_cfg.MAX_EPOCH))


def build_lr_scheduler(optimizer: torch.optim.Optimizer, optim_cfg) -> LRScheduler:
    """The scheduler of ``optim_cfg.LR_SCHEDULER``, wrapped in a warmup when ``WARMUP_EPOCH > 0``."""
    if optim_cfg.LR_SCHEDULER not in AVAI_SCHEDS:
        raise ValueError(f"scheduler must be one of {AVAI_SCHEDS}, but got {optim_cfg.LR_SCHEDULER}")
    scheduler = _main_scheduler(optimizer, optim_cfg)
    if optim_cfg.WARMUP_EPOCH <= 0:
        return scheduler
    if not optim_cfg.WARMUP_RECOUNT:
        scheduler.last_epoch = optim_cfg.WARMUP_EPOCH
    if optim_cfg.WARMUP_TYPE == "constant":
        return ConstantWarmupScheduler(optimizer, scheduler, optim_cfg.WARMUP_EPOCH, optim_cfg.WARMUP_CONS_LR)
    if optim_cfg.WARMUP_TYPE == "linear":
        return LinearWarmupScheduler(optimizer, scheduler, optim_cfg.WARMUP_EPOCH, optim_cfg.WARMUP_MIN_LR)
    raise ValueError(f"OPTIM.WARMUP_TYPE must be 'constant' or 'linear', got {optim_cfg.WARMUP_TYPE!r}")
