"""The project's own forward over CLIP's residual blocks, injecting per-layer prompts.

CLIP's transformers run in LND layout (tokens, batch, width). ``run_resblocks`` walks
``transformer.resblocks`` and, before block ``j``, replaces the prompt tokens with the prompt
given for layer ``j`` (deep prompts, as in VPT-deep and MaPLe), without forking ``clip``:
- text (MaPLe): layer 0 takes the learned context already inside the prompt embeddings; before
  block j >= 1 the context tokens (positions 1 .. n_ctx, right after SOS) are replaced by
  ``deep_text_prompts[j - 1]``;
- image (VPT-deep, placed as in MaPLe's code): ``deep_visual_prompts[0]`` is appended after the
  CLS and patch tokens (after the positional embedding, before ``ln_pre``); before block j >= 1
  those last tokens are replaced by ``deep_visual_prompts[j]``. Attention in the image tower is
  not causal, so where the prompt tokens sit in the sequence does not change the output.
A prompt is ``(n_tokens, width)`` (shared by the batch) or ``(batch, n_tokens, width)``.
"""
from typing import Optional, Sequence

import torch
from clip.model import CLIP, VisionTransformer
from torch import nn

LayerPrompts = Optional[Sequence[Optional[torch.Tensor]]]


def prompt_length(prompt: torch.Tensor) -> int:
    """Number of prompt tokens in a (tokens, width) or (batch, tokens, width) prompt."""
    return prompt.shape[-2]


def _prompt_lnd(prompt: torch.Tensor, batch: int, dtype: torch.dtype) -> torch.Tensor:
    prompt = prompt.type(dtype)
    if prompt.dim() == 2:
        return prompt.unsqueeze(1).expand(-1, batch, -1)
    return prompt.permute(1, 0, 2)


def replace_tokens(x: torch.Tensor, prompt: torch.Tensor, start: int) -> torch.Tensor:
    """Return LND ``x`` with tokens ``start .. start + n_tokens`` replaced by ``prompt``."""
    stop = start + prompt_length(prompt)
    return torch.cat([x[:start], _prompt_lnd(prompt, x.shape[1], x.dtype), x[stop:]], dim=0)


def run_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One ``ResidualAttentionBlock`` on LND ``x``. A causal mask longer than the sequence is cut
    to its length (text sequences may be cut after their last EOT token: with causal attention the
    tokens before it never see the padding, so the result is the same)."""
    mask = block.attn_mask
    if mask is None or mask.shape[0] == x.shape[0]:
        return block(x)
    mask = mask[:x.shape[0], :x.shape[0]].to(dtype=x.dtype, device=x.device)
    hidden = block.ln_1(x)
    x = x + block.attn(hidden, hidden, hidden, need_weights=False, attn_mask=mask)[0]
    return x + block.mlp(block.ln_2(x))


def run_resblocks(resblocks: nn.Sequential, x: torch.Tensor, layer_prompts: LayerPrompts = None,
                  prompt_start: int = 1) -> torch.Tensor:
    """Run LND ``x`` through ``resblocks``; before block j, put ``layer_prompts[j]`` (if given
    and not None) at tokens ``prompt_start ..``. Without prompts this equals ``resblocks(x)``."""
    layer_prompts = list(layer_prompts or [])
    if len(layer_prompts) > len(resblocks):
        raise ValueError(f"{len(layer_prompts)} layer prompts given for {len(resblocks)} residual blocks")
    for index, block in enumerate(resblocks):
        if index < len(layer_prompts) and layer_prompts[index] is not None:
            x = replace_tokens(x, layer_prompts[index], prompt_start)
        x = run_block(block, x)
    return x


def text_layer_prompts(deep_text_prompts: LayerPrompts) -> list:
    """Per-block prompts for the text tower: none at block 0, ``deep_text_prompts[j-1]`` at j."""
    return [None, *deep_text_prompts] if deep_text_prompts else []


class VisualEncoder(nn.Module):
    """CLIP's image tower with optional deep visual prompts (ViT only)."""

    def __init__(self, clip_model: CLIP):
        super().__init__()
        self.visual = clip_model.visual

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.conv1.weight.dtype

    def forward(self, images: torch.Tensor, deep_visual_prompts: LayerPrompts = None) -> torch.Tensor:
        """Image features (unnormalised), as ``clip_model.encode_image`` plus the prompts."""
        images = images.type(self.dtype)
        if not isinstance(self.visual, VisionTransformer):
            if deep_visual_prompts:
                raise ValueError("deep visual prompts need a ViT image tower; this CLIP has a ResNet one")
            return self.visual(images)
        return self._forward_vit(images, list(deep_visual_prompts or []))

    def _forward_vit(self, images: torch.Tensor, prompts: list) -> torch.Tensor:
        visual = self.visual
        x = visual.conv1(images).flatten(2).permute(0, 2, 1)  # N, grid**2, width
        cls_token = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls_token, x], dim=1) + visual.positional_embedding.to(x.dtype)
        n_image_tokens = x.shape[1]
        if prompts:
            first = prompts[0].type(x.dtype)
            first = first.expand(x.shape[0], -1, -1) if first.dim() == 2 else first
            x = torch.cat([x, first], dim=1)
        x = visual.ln_pre(x).permute(1, 0, 2)
        x = run_resblocks(visual.transformer.resblocks, x, [None, *prompts[1:]], prompt_start=n_image_tokens)
        x = visual.ln_post(x[0])
        return x @ visual.proj if visual.proj is not None else x
