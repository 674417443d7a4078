"""Make upstream Dassl.pytorch run on the torch this project pins.

The toolbox runs on whichever ``dassl`` is importable: the bundled engine (``third_party``)
or upstream Dassl.pytorch. Upstream's warmup LR schedulers (``ConstantWarmupScheduler``,
``LinearWarmupScheduler``) pass a ``verbose`` argument to torch's ``LRScheduler.__init__``,
which torch >= 2.7 no longer accepts, so any config with ``OPTIM.WARMUP_EPOCH > 0`` (every
CoOp config) fails at ``build_lr_scheduler``. Their ``state_dict`` also pickles the wrapped
scheduler object, which ``torch.load``'s ``weights_only`` default (torch >= 2.6) refuses, so
their checkpoints could not be loaded back.

``ensure_dassl_compat()`` detects that case (upstream Dassl + a torch whose schedulers take no
``verbose``) and patches upstream's ``_BaseWarmupScheduler`` in place, with one logged line:
``__init__`` drops ``verbose``; ``state_dict``/``load_state_dict`` store the wrapped scheduler
as its own state dict. Learning-rate values are unchanged. With the bundled engine, or with a
torch that still accepts ``verbose``, it does nothing.
"""
import importlib
import inspect
from typing import Any, Dict

import torch
from torch.optim.lr_scheduler import LRScheduler

PATCH_MARK = "_gram_dassl_compat_patched"


def torch_schedulers_accept_verbose() -> bool:
    """True when ``torch.optim.lr_scheduler.LRScheduler.__init__`` still has a ``verbose`` parameter."""
    return "verbose" in inspect.signature(LRScheduler.__init__).parameters


def _warmup_init(self, optimizer, successor, warmup_epoch, last_epoch=-1, verbose=False) -> None:
    self.successor = successor
    self.warmup_epoch = warmup_epoch
    LRScheduler.__init__(self, optimizer, last_epoch)


def _warmup_state_dict(self) -> Dict[str, Any]:
    state = {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "successor")}
    state["successor"] = self.successor.state_dict()
    return state


def _warmup_load_state_dict(self, state_dict: Dict[str, Any]) -> None:
    state = dict(state_dict)
    successor_state = state.pop("successor")
    if not isinstance(successor_state, dict):  # written by unpatched upstream: a whole scheduler object
        successor_state = successor_state.state_dict()
    self.successor.load_state_dict(successor_state)
    self.__dict__.update(state)


def patch_warmup_scheduler(base_cls: type) -> bool:
    """Patch upstream's ``_BaseWarmupScheduler`` class in place; False if it was already patched."""
    if getattr(base_cls, PATCH_MARK, False):
        return False
    base_cls.__init__ = _warmup_init
    base_cls.state_dict = _warmup_state_dict
    base_cls.load_state_dict = _warmup_load_state_dict
    setattr(base_cls, PATCH_MARK, True)
    return True


def ensure_dassl_compat() -> None:
    """Patch upstream Dassl's warmup schedulers when the installed torch rejects ``verbose``.

    Call once before building a trainer. A no-op on the bundled engine and on older torch.
    """
    dassl = importlib.import_module("dassl")
    if getattr(dassl, "IS_BUNDLED_ENGINE", False) or torch_schedulers_accept_verbose():
        return
    lr_scheduler = importlib.import_module("dassl.optim.lr_scheduler")
    base_cls = getattr(lr_scheduler, "_BaseWarmupScheduler", None)
    if base_cls is None:
        raise ImportError(
            f"dassl at {dassl.__file__} has no dassl.optim.lr_scheduler._BaseWarmupScheduler; "
            "cannot apply the torch compatibility patch (use the bundled engine: pip install -e .)"
        )
    if patch_warmup_scheduler(base_cls):
        print(
            f"dassl_compat: upstream Dassl {getattr(dassl, '__version__', '?')} on torch {torch.__version__}: "
            "patched dassl.optim.lr_scheduler._BaseWarmupScheduler (drop the 'verbose' argument torch >= 2.7 "
            "rejects; save the wrapped scheduler as a state dict so checkpoints load with weights_only)"
        )


def load_checkpoint_file(path: str, cfg) -> Dict[str, Any]:
    """``dassl.utils.load_checkpoint`` with the opt-in ``TRAIN.ALLOW_PICKLED_CHECKPOINTS`` passed on where the
    engine takes it (the bundled one); upstream Dassl loads as it always does."""
    from dassl.utils import load_checkpoint

    if "allow_pickle" in inspect.signature(load_checkpoint).parameters:
        return load_checkpoint(path, allow_pickle=bool(cfg.TRAIN.get("ALLOW_PICKLED_CHECKPOINTS", False)))
    return load_checkpoint(path)
