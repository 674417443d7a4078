"""open_clip backbones (LAION, DataComp, ... CLIPs) behind the same CLIP interface as OpenAI's.

``MODEL.BACKBONE.NAME open_clip:<model>[@<pretrained>]`` builds the model with open_clip and converts
it into OpenAI's ``clip.model.CLIP`` module, so the text encoder, deep prompts, feature cache, clustering
stage and meta-training (everything written against OpenAI's module) run on it unchanged:
- ``<model>``: an open_clip model name (``ViT-B-16``, ``ViT-B-32-quickgelu``, ``RN50``, ``hf-hub:org/repo``,
  ``local-dir:/path``) or the path of a model-config JSON in open_clip's format (registered under its
  file stem; how tests build tiny models);
- ``<pretrained>``: an open_clip pretrained tag (``laion2b_s34b_b88k``; downloaded to open_clip's cache
  when missing) or the path of a weights file. Without it the weights are randomly initialised (from a
  fixed seed, so the clustering stage, meta-training and tuning all see the same model) and a warning
  says so.
The conversion copies the weights one to one (the state-dict keys of open_clip's standard CLIP are
OpenAI's) and keeps open_clip's activation (``nn.GELU`` for LAION/DataComp models, QuickGELU for
OpenAI-trained ones) and head counts; the converted model's image and text features equal open_clip's.
Architectures OpenAI's module cannot express (HF or timm towers, SigLIP's logit bias, attention pooling,
layer scale, other text pooling) are refused with one line. Like ``clip_loader.load_clip``, the result
has fp16 weights and is in eval mode. open_clip (``pip install open_clip_torch``, the ``open_clip`` extra)
is imported only when such a name is used.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Optional

import torch
from clip.model import CLIP, convert_weights
from torch import nn

PREFIX = "open_clip:"
RANDOM_INIT_SEED = 0


class OpenCLIPError(RuntimeError):
    """An open_clip backbone cannot be built or converted (one-line message)."""


@dataclass(frozen=True)
class OpenCLIPSpec:
    name: str  # the full MODEL.BACKBONE.NAME
    model: str  # open_clip model name (a config file is registered under its stem)
    pretrained: Optional[str]  # tag, weights file, or None for random weights
    config_file: Optional[str] = None


def is_open_clip_name(backbone_name: str) -> bool:
    return backbone_name.startswith(PREFIX)


def _import_open_clip():
    try:
        import open_clip
    except ImportError:
        raise OpenCLIPError(
            "open_clip backbones need open_clip_torch: pip install open_clip_torch (or pip install -e .[open_clip])"
        ) from None
    return open_clip


def parse_open_clip_name(backbone_name: str) -> OpenCLIPSpec:
    """Split ``open_clip:<model>[@<pretrained>]``; a ``.json`` model is registered with open_clip."""
    model, _, pretrained = backbone_name[len(PREFIX):].partition("@")
    if not model:
        raise OpenCLIPError(f"{backbone_name}: expected open_clip:<model>[@<pretrained tag or weights file>]")
    config_file = None
    if model.endswith(".json"):
        config_file = os.path.abspath(os.path.expanduser(model))
        if not os.path.isfile(config_file):
            raise OpenCLIPError(f"{backbone_name}: model config {config_file} does not exist")
        model = os.path.splitext(os.path.basename(config_file))[0]
    if pretrained and os.path.isfile(os.path.expanduser(pretrained)):
        pretrained = os.path.abspath(os.path.expanduser(pretrained))
    return OpenCLIPSpec(backbone_name, model, pretrained or None, config_file)


def build_open_clip_model(spec: OpenCLIPSpec) -> nn.Module:
    """open_clip's own model (fp32, CPU); random weights come from a fixed seed, the global RNG untouched."""
    open_clip = _import_open_clip()
    if spec.config_file:
        open_clip.add_model_config(spec.config_file)
    elif ":" not in spec.model and spec.model not in open_clip.list_models():
        raise OpenCLIPError(f"{spec.name}: {spec.model!r} is not an open_clip model name (open_clip.list_models(), "
                            "e.g. ViT-B-16, ViT-B-32-quickgelu, RN50) nor a model-config .json file")
    if spec.pretrained is None and ":" not in spec.model:  # hf-hub: / local-dir: bring their own weights
        tags = open_clip.list_pretrained_tags_by_model(spec.model) if spec.config_file is None else []
        known = f" (pretrained tags: {', '.join(tags)})" if tags else ""
        print(f"Warning: {spec.name} names no @pretrained weights: the model is randomly initialised{known}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        try:
            return open_clip.create_model(spec.model, pretrained=spec.pretrained, precision="fp32", device="cpu",
                                          require_pretrained=spec.pretrained is not None or ":" in spec.model)
        except Exception as error:  # unknown name, tag, unreadable weights, no network
            raise OpenCLIPError(f"{spec.name}: open_clip could not build it ({_first_line(error)})") from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _refuse(spec: OpenCLIPSpec, what: str) -> OpenCLIPError:
    return OpenCLIPError(f"{spec.name}: {what}, which OpenAI's CLIP module cannot express; use a standard "
                         "open_clip CLIP (ViT or ModifiedResNet image tower, open_clip's own text tower)")


def _vision_sizes(spec: OpenCLIPSpec, visual: nn.Module) -> dict:
    from open_clip.modified_resnet import ModifiedResNet
    from open_clip.transformer import VisionTransformer

    if isinstance(visual, VisionTransformer):
        if visual.attn_pool is not None or visual.pool_type != "tok" or visual.final_ln_after_pool:
            raise _refuse(spec, "its image tower pools other than by the class token")
        if isinstance(visual.ln_pre, nn.Identity) or visual.proj is None:
            raise _refuse(spec, "its image tower has no ln_pre or no projection")
        if visual.image_size[0] != visual.image_size[1] or visual.patch_size[0] != visual.patch_size[1]:
            raise _refuse(spec, "its images or patches are not square")
        return dict(image_resolution=visual.image_size[0], vision_layers=len(visual.transformer.resblocks),
                    vision_width=visual.conv1.out_channels, vision_patch_size=visual.patch_size[0])
    if isinstance(visual, ModifiedResNet):
        layers = tuple(len(getattr(visual, f"layer{stage}")) for stage in range(1, 5))
        return dict(image_resolution=visual.image_size, vision_layers=layers,
                    vision_width=visual.conv1.out_channels * 2, vision_patch_size=None)
    raise _refuse(spec, f"its image tower is a {type(visual).__name__}")


def to_openai_clip(source: nn.Module, spec: OpenCLIPSpec) -> CLIP:
    """OpenAI's ``CLIP`` module holding ``source``'s weights, activations and head counts (fp32)."""
    open_clip = _import_open_clip()
    if type(source) is not open_clip.CLIP:
        raise _refuse(spec, f"it is a {type(source).__name__} (a separate HF/timm/custom text tower or CoCa)")
    if getattr(source, "logit_bias", None) is not None:
        raise _refuse(spec, "it has a logit bias (SigLIP)")
    if source.text_pool_type != "argmax" or not isinstance(source.text_projection, nn.Parameter):
        raise _refuse(spec, "its text tower pools other than at the EOT token or has no plain projection")
    text_blocks = source.transformer.resblocks
    sizes = _vision_sizes(spec, source.visual)
    with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten: leave the global RNG alone
        model = CLIP(
            embed_dim=source.text_projection.shape[1],
            context_length=source.context_length,
            vocab_size=source.vocab_size,
            transformer_width=source.token_embedding.embedding_dim,
            transformer_heads=text_blocks[0].attn.num_heads,
            transformer_layers=len(text_blocks),
            **sizes,
        )
    missing, unexpected = model.load_state_dict(source.state_dict(), strict=False)
    if missing or unexpected:
        keys = unexpected or missing
        listed = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
        kind = "extra" if unexpected else "missing"
        raise _refuse(spec, f"its weights do not map onto OpenAI's CLIP ({kind} keys {listed})")
    _copy_activations_and_heads(source, model)
    return model


def _copy_activations_and_heads(source: nn.Module, model: CLIP) -> None:
    """Use open_clip's MLP activation (GELU or QuickGELU) and head counts in every block."""
    towers = [(source.transformer, model.transformer)]
    if hasattr(source.visual, "transformer"):
        towers.append((source.visual.transformer, model.visual.transformer))
    else:
        model.visual.attnpool.num_heads = source.visual.attnpool.num_heads
    for source_tower, tower in towers:
        for source_block, block in zip(source_tower.resblocks, tower.resblocks):
            block.mlp.gelu = source_block.mlp.gelu
            block.attn.num_heads = source_block.attn.num_heads
            block.attn.head_dim = block.attn.embed_dim // block.attn.num_heads


def load_open_clip(backbone_name: str, device: str = "cpu") -> CLIP:
    """The open_clip model named ``open_clip:<model>[@<pretrained>]`` as OpenAI's CLIP (fp16, eval)."""
    spec = parse_open_clip_name(backbone_name)
    model = to_openai_clip(build_open_clip_model(spec), spec)
    convert_weights(model)
    return model.eval().to(device)


def open_clip_fingerprint(backbone_name: str, file_fingerprint) -> str:
    """16 hex digits naming the weights: of the weights file (``file_fingerprint(path)``) when the tag is a
    file, else of the name (and of the model-config file's content, if the model is one)."""
    spec = parse_open_clip_name(backbone_name)
    digest = hashlib.sha256(f"{spec.model}@{spec.pretrained or f'random-init-{RANDOM_INIT_SEED}'}".encode())
    if spec.config_file:
        with open(spec.config_file, "rb") as config:
            digest.update(config.read())
    if spec.pretrained and os.path.isfile(spec.pretrained):
        digest.update(file_fingerprint(spec.pretrained).encode())
    return digest.hexdigest()[:16]
