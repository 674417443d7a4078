"""Resolve ``MODEL.BACKBONE.NAME`` to a CLIP checkpoint file and build the model from it.

A name is either one of OpenAI's model names (``ViT-B/16``, ``RN50``, ...), looked for in
``$GRAM_CLIP_CACHE`` and ``~/.cache/clip`` and downloaded there when missing (unless
``GRAM_CLIP_OFFLINE=1``), or a path to a checkpoint. A checkpoint is an OpenAI TorchScript
archive or a ``torch.save``'d state dict (optionally wrapped as ``{"state_dict": ...}``).
The model comes out as ``clip.model.build_model`` builds it (fp16 weights, eval mode), the same
as CoOp's ``load_clip_to_cpu``. ``open_clip:<model>[@<pretrained>]`` names an open_clip model, converted to
the same module (``open_clip_backbone``; open_clip is imported only then). The file's kind is read from its zip entries before it is opened (a TorchScript
archive holds ``code/`` and ``constants.pkl``), so a consumed file handle is never re-read.
"""
import os
import warnings
import zipfile
from typing import Dict, List

import torch
from clip import clip as openai_clip
from clip.model import CLIP, build_model

from fileio.hashing import file_fingerprint
from trainers.backbone.open_clip_backbone import (OpenCLIPError, is_open_clip_name, load_open_clip,
                                                  open_clip_fingerprint)

_DEFAULT_CACHE = os.path.join("~", ".cache", "clip")
_TEXT_KEYS = ("positional_embedding", "token_embedding.weight", "ln_final.weight", "text_projection")
_VIT_KEYS = ("visual.proj", "visual.conv1.weight", "visual.positional_embedding")
_RESNET_KEYS = ("visual.layer1.0.conv1.weight", "visual.attnpool.positional_embedding")


class CLIPCheckpointError(RuntimeError):
    """A CLIP checkpoint is missing or is not a CLIP checkpoint (one-line message)."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def clip_cache_dirs() -> List[str]:
    """Folders searched for OpenAI checkpoint files, in order."""
    folders = []
    if os.environ.get("GRAM_CLIP_CACHE"):
        folders.append(os.path.expanduser(os.environ["GRAM_CLIP_CACHE"]))
    folders.append(os.path.expanduser(_DEFAULT_CACHE))
    return folders


def _download_allowed() -> bool:
    return os.environ.get("GRAM_CLIP_OFFLINE", "0") != "1"


def _resolve_openai_name(name: str) -> str:
    url = openai_clip._MODELS[name]
    filename = os.path.basename(url)
    folders = clip_cache_dirs()
    for folder in folders:
        candidate = os.path.join(folder, filename)
        if os.path.isfile(candidate):
            return candidate
    looked = ", ".join(folders)
    if not _download_allowed():
        raise CLIPCheckpointError(
            f"CLIP weights '{name}' not found: looked for {filename} in {looked}; download {url} into "
            f"one of these folders (GRAM_CLIP_OFFLINE=1 forbids downloading) or give a checkpoint path "
            f"as MODEL.BACKBONE.NAME"
        )
    try:
        return openai_clip._download(url, folders[0])
    except Exception as error:  # no network, checksum mismatch, unwritable folder
        raise CLIPCheckpointError(
            f"CLIP weights '{name}' not found in {looked} and downloading {url} failed ({_first_line(error)}); "
            f"download it into {folders[0]} by hand or give a checkpoint path as MODEL.BACKBONE.NAME"
        ) from error


def resolve_checkpoint_path(backbone_name: str) -> str:
    """Return the checkpoint file for an OpenAI model name or a path; raise CLIPCheckpointError."""
    path = os.path.expanduser(backbone_name)
    if os.path.isfile(path):
        return path
    if backbone_name in openai_clip._MODELS:
        return _resolve_openai_name(backbone_name)
    raise CLIPCheckpointError(
        f"CLIP checkpoint '{backbone_name}' not found: it is neither an existing file (cwd {os.getcwd()}) "
        f"nor an OpenAI model name ({', '.join(openai_clip.available_models())})"
    )


def is_torchscript_archive(path: str) -> bool:
    """True for a TorchScript zip archive (OpenAI's checkpoints), False for torch.save files."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())


def _read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    with open(path, "rb") as opened_file:
        if is_torchscript_archive(path):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
                try:
                    return torch.jit.load(opened_file, map_location="cpu").state_dict()
                except RuntimeError as error:
                    message = f"{path} is a damaged TorchScript archive ({_first_line(error)})"
                    raise CLIPCheckpointError(message) from error
        try:
            loaded = torch.load(opened_file, map_location="cpu", weights_only=True)
        except Exception as error:
            raise CLIPCheckpointError(
                f"{path} is not a CLIP checkpoint: neither a TorchScript archive nor a torch.save file "
                f"of tensors ({type(error).__name__})"
            ) from error
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise CLIPCheckpointError(
            f"{path} is not a CLIP checkpoint: it holds a {type(loaded).__name__}, not a state dict")
    return {_strip_module_prefix(key): value for key, value in loaded.items()}


def _strip_module_prefix(key: str) -> str:
    return key[len("module."):] if key.startswith("module.") else key


def _missing_clip_keys(state_dict: Dict[str, torch.Tensor]) -> List[str]:
    missing = [key for key in _TEXT_KEYS if key not in state_dict]
    visual_keys = _VIT_KEYS if "visual.proj" in state_dict else _RESNET_KEYS
    missing += [key for key in visual_keys if key not in state_dict]
    return missing


def load_clip_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Read a checkpoint file into an OpenAI-format CLIP state dict, checking its keys."""
    state_dict = _read_state_dict(path)
    missing = _missing_clip_keys(state_dict)
    if missing:
        raise CLIPCheckpointError(f"{path} is not a CLIP checkpoint: missing keys {', '.join(missing)}")
    return state_dict


def load_clip(backbone_name: str, device: str = "cpu") -> CLIP:
    """Build CLIP (fp16 weights, eval mode) from an OpenAI model name, a checkpoint path or an
    ``open_clip:`` name."""
    if is_open_clip_name(backbone_name):
        try:
            return load_open_clip(backbone_name, device)
        except OpenCLIPError as error:
            raise CLIPCheckpointError(str(error)) from error
    path = resolve_checkpoint_path(backbone_name)
    state_dict = load_clip_state_dict(path)
    try:
        model = build_model(state_dict)
    except (RuntimeError, KeyError, AssertionError) as error:
        raise CLIPCheckpointError(f"{path} is not a loadable CLIP checkpoint: {_first_line(error)}") from error
    return model.to(device)


def load_clip_to_cpu(cfg) -> CLIP:
    """CoOp's entry point: the CLIP named by ``cfg.MODEL.BACKBONE.NAME``, on the CPU."""
    return load_clip(cfg.MODEL.BACKBONE.NAME, device="cpu")


def checkpoint_fingerprint(backbone_name: str) -> str:
    """First 16 hex digits of the sha256 of the checkpoint file (recorded next to derived data); for an
    ``open_clip:`` name, see ``open_clip_backbone.open_clip_fingerprint``."""
    if is_open_clip_name(backbone_name):
        try:
            return open_clip_fingerprint(backbone_name, checkpoint_fingerprint)
        except OpenCLIPError as error:
            raise CLIPCheckpointError(str(error)) from error
    return file_fingerprint(resolve_checkpoint_path(backbone_name))
