"""The meta checkpoint: what GRAM meta-training hands to downstream trainers.

It holds the meta-learned prompt initialization (named like the prompt method's parameters), the
regulator's config and weights, the prompt method it was made for, the CLIP checkpoint's
fingerprint and the meta-training settings. It is written atomically and checked on load: a
checkpoint made with another CLIP, or for prompts of another shape, is refused with a clear error.

A meta checkpoint is the file people download and share, so it holds only tensors, plain dicts, lists,
strings and numbers, and is read with ``torch.load(weights_only=True)``, which runs no code from the file.
A file that needs full unpickling is refused unless the caller opts in (``allow_pickle``, the config key
``TRAIN.ALLOW_PICKLED_CHECKPOINTS``), with a warning.
"""
from __future__ import annotations

import os
import pickle
import warnings
from dataclasses import asdict, dataclass, field
from typing import Dict, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from fileio.atomic import write_atomically

from .regulator import build_regulator, regulator_from_config

FORMAT = "gram-meta-checkpoint/1"


class MetaCheckpointError(ValueError):
    """A meta checkpoint is missing, malformed or does not fit the model (one-line message)."""


@dataclass
class MetaCheckpoint:
    method: str
    prompt_init: Dict[str, Tensor]
    regulator_config: dict
    regulator_state: Dict[str, Tensor]
    clip_fingerprint: str
    backbone: str
    settings: dict = field(default_factory=dict)
    test_time: Optional[dict] = None  # structure-induced test-time regulator, when meta-trained

    def build_regulator(self) -> nn.Module:
        """The regulator with its meta-learned weights, frozen."""
        regulator = regulator_from_config(self.regulator_config)
        regulator.load_state_dict(self.regulator_state)
        regulator.requires_grad_(False)
        return regulator.eval()


def save_meta_checkpoint(checkpoint: MetaCheckpoint, path: str) -> None:
    """Write ``checkpoint`` to ``path`` atomically."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    payload = {"format": FORMAT, **asdict(checkpoint)}
    payload["prompt_init"] = {k: v.detach().cpu().float() for k, v in checkpoint.prompt_init.items()}
    payload["regulator_state"] = {k: v.detach().cpu() for k, v in checkpoint.regulator_state.items()}
    write_atomically(path, lambda handle: torch.save(payload, handle), binary=True)


def fresh_meta_checkpoint(method: str, prompts: Mapping[str, Tensor], clip_fingerprint: str, backbone: str,
                          rank: int = 2) -> MetaCheckpoint:
    """A meta checkpoint whose init is ``prompts`` and whose regulator is fresh (untrained, so it returns the
    raw gradient up to its low-rank map's initialisation): GRAM's machinery without meta-training, for checks."""
    regulator = build_regulator("lowrank", {n: tuple(p.shape) for n, p in prompts.items()}, rank=rank, gate_hidden=rank)
    return MetaCheckpoint(method, {n: p.detach() for n, p in prompts.items()}, regulator.config(),
                          regulator.state_dict(), clip_fingerprint, backbone)


def _read_payload(path: str, allow_pickle: bool):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if not allow_pickle:
            raise MetaCheckpointError(
                f"{path} holds pickled objects that torch.load(weights_only=True) refuses ({reason}); if you trust "
                "the file, set TRAIN.ALLOW_PICKLED_CHECKPOINTS True to unpickle it in full") from None
    warnings.warn(f"{path}: unpickling the meta checkpoint in full (TRAIN.ALLOW_PICKLED_CHECKPOINTS): "
                  "this can run any code in the file")
    return torch.load(path, map_location="cpu", weights_only=False)


def load_meta_checkpoint(path: str, allow_pickle: bool = False) -> MetaCheckpoint:
    """Read a meta checkpoint (``weights_only``; see the module doc for ``allow_pickle``), refusing files
    that are not one."""
    if not path:
        raise MetaCheckpointError("no meta checkpoint given: set TRAINER.GRAM.META_CKPT to the file "
                                  "meta_train.py wrote (e.g. output/gram/<method>/meta_checkpoint.pth)")
    if not os.path.isfile(path):
        raise MetaCheckpointError(f"meta checkpoint not found: {path} (run meta_train.py or scripts/gram/meta_train.sh)")
    try:
        payload = _read_payload(path, allow_pickle)
    except MetaCheckpointError:
        raise
    except Exception as error:  # truncated file, not a torch file
        raise MetaCheckpointError(f"{path} is not a readable meta checkpoint ({type(error).__name__})") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MetaCheckpointError(f"{path} is not a GRAM meta checkpoint (expected format '{FORMAT}')")
    payload.pop("format")
    return MetaCheckpoint(**payload)


def _fits(init_shape: Tuple[int, ...], model_shape: Tuple[int, ...]) -> bool:
    """Equal shapes, or the one documented exception: a shared ``(n_ctx, width)`` context meta-learned for
    a class-specific model (CoOp's CSC), which every class then starts from."""
    return init_shape == model_shape or (len(model_shape) == len(init_shape) + 1 and model_shape[1:] == init_shape)


def _tensor_list(shapes: Mapping[str, Tuple[int, ...]], names) -> str:
    return ", ".join(f"{name} {list(shapes[name])}" for name in names) or "none"


def check_compatible(checkpoint: MetaCheckpoint, path: str, clip_fingerprint: Optional[str],
                     prompt_shapes: Mapping[str, Tuple[int, ...]], model_name: str = "this model") -> None:
    """Raise MetaCheckpointError unless ``checkpoint`` was made for this CLIP and exactly these prompt
    tensors: the same names both ways and the same shapes (see ``_fits``), so that a checkpoint of a
    deeper or longer prompt never loads in part."""
    if clip_fingerprint and checkpoint.clip_fingerprint and clip_fingerprint != checkpoint.clip_fingerprint:
        raise MetaCheckpointError(
            f"{path} was meta-trained with CLIP {checkpoint.backbone} (fingerprint {checkpoint.clip_fingerprint}), "
            f"but this model's CLIP has fingerprint {clip_fingerprint}")
    init_shapes = {name: tuple(t.shape) for name, t in checkpoint.prompt_init.items()}
    model_shapes = {name: tuple(shape) for name, shape in prompt_shapes.items()}
    differing = [name for name in model_shapes if name not in init_shapes
                 or not _fits(init_shapes[name], model_shapes[name])]
    differing += [name for name in init_shapes if name not in model_shapes]
    if differing:
        in_checkpoint = [name for name in differing if name in init_shapes]
        in_model = [name for name in differing if name in model_shapes]
        raise MetaCheckpointError(
            f"{path} ({checkpoint.method}) does not fit the prompt tensors of {model_name}: the meta checkpoint has "
            f"{_tensor_list(init_shapes, in_checkpoint)}; the model has {_tensor_list(model_shapes, in_model)} "
            "(names and shapes must match: meta-train with the recipe's N_CTX / prompt depth / backbone)")


def copy_prompt_init(checkpoint: MetaCheckpoint, prompt_params: Mapping[str, nn.Parameter]) -> None:
    """Overwrite the model's prompt tensors with the meta-learned initialization."""
    with torch.no_grad():
        for name, param in prompt_params.items():
            param.copy_(checkpoint.prompt_init[name].to(param.dtype).expand_as(param))
