"""Checkpoint files and model helpers (Dassl's ``dassl.utils.torchtools``).

Layout (as Dassl): ``<save_dir>/model.pth.tar-<epoch>`` (or ``model-best.pth.tar``) holding
``state_dict, epoch, optimizer, scheduler, val_result`` (plus ``rng_state`` here), and a text
file ``<save_dir>/checkpoint`` naming the latest file. Every file is written atomically.
"""
import os.path as osp
import pickle
import shutil
import warnings
from collections import OrderedDict
from typing import Any, Dict, Iterable, Optional, Union

import torch
import torch.nn as nn

from .rng import restore_rng_state
from .tools import mkdir_if_missing, write_atomic

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "resume_from_checkpoint",
    "check_state_dict_matches",
    "open_all_layers",
    "open_specified_layers",
    "count_num_param",
    "load_pretrained_weights",
    "init_network_weights",
]

POINTER_FILE = "checkpoint"


def _strip_module_prefix(state_dict: Dict[str, Any]) -> "OrderedDict[str, Any]":
    """Drop the ``module.`` prefix ``nn.DataParallel`` adds to parameter names."""
    return OrderedDict((k[len("module."):] if k.startswith("module.") else k, v) for k, v in state_dict.items())


def _copy_into(src_path: str, dst_file) -> None:
    with open(src_path, "rb") as src:
        shutil.copyfileobj(src, dst_file)


def save_checkpoint(
    state: Dict[str, Any],
    save_dir: str,
    is_best: bool = False,
    remove_module_from_keys: bool = True,
    model_name: str = "",
) -> str:
    """Save ``state`` as ``save_dir/model.pth.tar-<epoch>`` (or ``model_name``) and update the pointer.

    With ``is_best`` the file is also copied to ``model-best.pth.tar``. Returns the path written.
    """
    mkdir_if_missing(save_dir)
    if remove_module_from_keys:
        state["state_dict"] = _strip_module_prefix(state["state_dict"])
    fpath = osp.join(save_dir, model_name or f"model.pth.tar-{state['epoch']}")
    write_atomic(fpath, lambda f: torch.save(state, f), mode="wb")
    print(f"Checkpoint saved to {fpath}")
    write_atomic(osp.join(save_dir, POINTER_FILE), lambda f: f.write(osp.basename(fpath) + "\n"))
    if is_best:
        best_fpath = osp.join(save_dir, "model-best.pth.tar")
        write_atomic(best_fpath, lambda f: _copy_into(fpath, f), mode="wb")
        print(f'Best checkpoint saved to "{best_fpath}"')
    return fpath


def load_checkpoint(fpath: str, allow_pickle: bool = False) -> Dict[str, Any]:
    """Load a checkpoint onto the CPU with ``torch.load(weights_only=True)``.

    A file that holds pickled objects (e.g. upstream Dassl's warmup scheduler) is refused: unpickling can
    run any code. ``allow_pickle=True`` (the config key ``TRAIN.ALLOW_PICKLED_CHECKPOINTS``) loads such a
    file with full unpickling, after a warning; do that only for checkpoints you trust.
    """
    if fpath is None:
        raise ValueError("File path is None")
    if not osp.exists(fpath):
        raise FileNotFoundError(f'File is not found at "{fpath}"')
    try:
        return torch.load(fpath, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if not allow_pickle:
            raise RuntimeError(
                f'{fpath} holds pickled objects that torch.load(weights_only=True) refuses ({reason}); '
                f"if you trust the file, set TRAIN.ALLOW_PICKLED_CHECKPOINTS True to unpickle it in full") from None
    except Exception as err:
        raise RuntimeError(f'Unable to load checkpoint from "{fpath}": {err}') from None
    warnings.warn(f"{fpath}: unpickling in full (TRAIN.ALLOW_PICKLED_CHECKPOINTS): this can run any code in the file")
    try:
        return torch.load(fpath, map_location="cpu", weights_only=False)
    except Exception as err:
        raise RuntimeError(f'Unable to load checkpoint from "{fpath}": {err}') from None


def check_state_dict_matches(model: nn.Module, state_dict: Dict[str, Any], fpath: str, model_name: str) -> None:
    """Raise a one-line ``ValueError`` when ``state_dict`` does not fit ``model`` key for key and shape."""
    expected = model.state_dict()
    given = _strip_module_prefix(state_dict)
    for key in list(expected) + [k for k in given if k not in expected]:
        if key not in given:
            problem = f'key "{key}" is missing from the file'
        elif key not in expected:
            problem = f'the file has key "{key}" that the model lacks'
        elif tuple(given[key].shape) != tuple(expected[key].shape):
            problem = f'key "{key}" has shape {tuple(given[key].shape)} in the file but {tuple(expected[key].shape)} in the model'
        else:
            continue
        raise ValueError(f'{fpath} is a checkpoint of another model: it does not fit model "{model_name}" ({problem})')


def _read_pointer(fdir: str) -> str:
    with open(osp.join(fdir, POINTER_FILE), "r") as f:
        return osp.join(fdir, f.readline().strip())


def resume_from_checkpoint(
    fdir: str,
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scheduler: Optional[Any] = None,
    allow_pickle: bool = False,
) -> int:
    """Resume from the checkpoint named in ``fdir/checkpoint``; returns the epoch to start from.

    Loads the model weights, then the optimizer and scheduler states, and, when the file
    carries one, the random number generator state saved with it.
    """
    fpath = _read_pointer(fdir)
    print(f'Loading checkpoint from "{fpath}"')
    checkpoint = load_checkpoint(fpath, allow_pickle=allow_pickle)
    check_state_dict_matches(model, checkpoint["state_dict"], fpath, osp.basename(osp.normpath(fdir)))
    model.load_state_dict(_strip_module_prefix(checkpoint["state_dict"]))
    print("Loaded model weights")
    if optimizer is not None and checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        print("Loaded optimizer")
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
        print("Loaded scheduler")
    if checkpoint.get("rng_state") is not None:
        restore_rng_state(checkpoint["rng_state"])
    start_epoch = checkpoint["epoch"]
    print(f"Previous epoch: {start_epoch}")
    return start_epoch


def open_all_layers(model: nn.Module) -> None:
    """Put ``model`` in train mode and make every parameter trainable."""
    model.train()
    for p in model.parameters():
        p.requires_grad = True


def open_specified_layers(model: nn.Module, open_layers: Union[str, Iterable[str]]) -> None:
    """Train only the named child modules of ``model``; freeze (and eval) the others."""
    if isinstance(model, nn.DataParallel):
        model = model.module
    if isinstance(open_layers, str):
        open_layers = [open_layers]
    open_layers = list(open_layers)
    for layer in open_layers:
        if not hasattr(model, layer):
            raise AttributeError(f'"{layer}" is not an attribute of the model')
    for name, module in model.named_children():
        is_open = name in open_layers
        module.train(is_open)
        for p in module.parameters():
            p.requires_grad = is_open


def count_num_param(model: Optional[nn.Module] = None, params: Optional[Iterable] = None) -> int:
    """Number of parameters of ``model`` (or of ``params``: tensors or param-group dicts)."""
    if model is not None:
        return sum(p.numel() for p in model.parameters())
    if params is not None:
        return sum(p["params"].numel() if isinstance(p, dict) else p.numel() for p in params)
    raise ValueError("model and params must provide at least one.")


def load_pretrained_weights(model: nn.Module, weight_path: str, allow_pickle: bool = False) -> None:
    """Copy into ``model`` the weights of ``weight_path`` whose names and shapes match; skip the rest."""
    checkpoint = load_checkpoint(weight_path, allow_pickle=allow_pickle)
    state_dict = _strip_module_prefix(checkpoint.get("state_dict", checkpoint))
    model_dict = model.state_dict()
    matched = OrderedDict(
        (k, v) for k, v in state_dict.items() if k in model_dict and model_dict[k].size() == v.size()
    )
    discarded = [k for k in state_dict if k not in matched]
    model_dict.update(matched)
    model.load_state_dict(model_dict)
    if not matched:
        warnings.warn(f"Cannot load {weight_path} (check the key names manually)")
        return
    print(f"Successfully loaded pretrained weights from {weight_path}")
    if discarded:
        print(f"Layers discarded due to unmatched keys or size: {discarded}")


def init_network_weights(model: nn.Module, init_type: str = "normal", gain: float = 0.02) -> None:
    """Initialise conv/linear weights (normal, xavier, kaiming or orthogonal) and reset norm layers."""
    initializers = {
        "normal": lambda w: nn.init.normal_(w, 0.0, gain),
        "xavier": lambda w: nn.init.xavier_normal_(w, gain=gain),
        "kaiming": lambda w: nn.init.kaiming_normal_(w, a=0, mode="fan_in"),
        "orthogonal": lambda w: nn.init.orthogonal_(w, gain=gain),
    }
    if init_type not in initializers:
        raise ValueError(f"Unknown init_type {init_type}; expected one of {sorted(initializers)}")

    def init_module(m: nn.Module) -> None:
        classname = m.__class__.__name__
        if hasattr(m, "weight") and ("Conv" in classname or "Linear" in classname):
            initializers[init_type](m.weight.data)
            if getattr(m, "bias", None) is not None:
                nn.init.constant_(m.bias.data, 0.0)
        elif ("BatchNorm" in classname or "InstanceNorm" in classname) and getattr(m, "weight", None) is not None:
            nn.init.constant_(m.weight.data, 1.0)
            nn.init.constant_(m.bias.data, 0.0)

    model.apply(init_module)
