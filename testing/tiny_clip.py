"""Tiny CLIP models in OpenAI's format, for tests, the demo and the toy world.

``build_tiny_clip`` instantiates ``clip.model.CLIP`` with small sizes (ViT or ModifiedResNet
image tower) from a seed; ``save_clip_state_dict`` writes its state dict the way OpenAI's
state-dict checkpoints are laid out, so ``clip.model.build_model`` (and therefore
``trainers.backbone.clip_loader.load_clip``) infers every size back from the keys. Transformer
widths must be multiples of 64 because ``build_model`` infers ``heads = width // 64``.
"""
import os
from typing import Tuple, Union

import torch
from clip.model import CLIP

from fileio.atomic import write_atomically
from trainers.backbone.clip_loader import load_clip_state_dict

VisionLayers = Union[int, Tuple[int, int, int, int]]

# CLIP ViT-B/16 exactly (OpenAI's sizes; heads = width // 64 gives its 12 vision and 8 text heads).
VIT_B16 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
               transformer_width=512, transformer_layers=12)
# ViT-B/16's widths and heads with 2 layers per tower and a 32-pixel image (a 2 x 2 patch grid): the
# shapes of the real model (MaPLe's 512 -> 768 coupling, 768-wide visual prompts) at a CPU test's cost.
VIT_B16_WIDTHS = dict(VIT_B16, image_resolution=32, vision_layers=2, transformer_layers=2)


def _check_width(name: str, width: int) -> None:
    if width % 64:
        raise ValueError(f"{name}={width} must be a multiple of 64 (OpenAI's build_model infers heads = width // 64)")


def build_tiny_clip(
    arch: str = "vit",
    embed_dim: int = 64,
    image_resolution: int = 32,
    vision_layers: VisionLayers = None,
    vision_width: int = 64,
    vision_patch_size: int = 8,
    context_length: int = 77,
    vocab_size: int = 49408,
    transformer_width: int = 64,
    transformer_layers: int = 2,
    seed: int = 0,
) -> CLIP:
    """A randomly initialised small CLIP (fp32, eval mode); same seed, same weights.

    ``arch="vit"``: ViT image tower (``vision_layers`` an int, default 2).
    ``arch="rn"``: ModifiedResNet image tower (``vision_layers`` a 4-tuple, default (1, 1, 1, 1);
    ``image_resolution`` a multiple of 32; its attention pool has ``vision_width * 32`` channels).
    The global random state is left untouched.
    """
    _check_width("transformer_width", transformer_width)
    if arch == "vit":
        _check_width("vision_width", vision_width)
        layers = 2 if vision_layers is None else int(vision_layers)
        if image_resolution % vision_patch_size:
            raise ValueError(f"image_resolution={image_resolution} must be a multiple of "
                             f"vision_patch_size={vision_patch_size}")
    elif arch == "rn":
        layers = (1, 1, 1, 1) if vision_layers is None else tuple(vision_layers)
        if len(layers) != 4 or image_resolution % 32:
            raise ValueError("a ResNet tiny CLIP needs 4 stage depths and an image_resolution that is a multiple of 32")
    else:
        raise ValueError(f"arch must be 'vit' or 'rn', got {arch!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(
            embed_dim=embed_dim,
            image_resolution=image_resolution,
            vision_layers=layers,
            vision_width=vision_width,
            vision_patch_size=vision_patch_size if arch == "vit" else None,
            context_length=context_length,
            vocab_size=vocab_size,
            transformer_width=transformer_width,
            transformer_heads=transformer_width // 64,
            transformer_layers=transformer_layers,
        )
    return model.eval()


def save_clip_state_dict(model: CLIP, path: str) -> str:
    """Write ``model.state_dict()`` to ``path`` atomically; return path."""
    state = model.state_dict()
    return write_atomically(path, lambda handle: torch.save(state, handle), binary=True)


def ensure_tiny_clip(path: str, arch: str = "vit", seed: int = 0, **sizes) -> str:
    """Build and save a tiny CLIP at ``path`` unless a readable CLIP checkpoint is already there."""
    if os.path.isfile(path):
        load_clip_state_dict(path)
        return path
    return save_clip_state_dict(build_tiny_clip(arch=arch, seed=seed, **sizes), path)
