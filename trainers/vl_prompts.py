"""Prompts for both CLIP towers, shared by VPT, MaPLe and ProMetaR (IVLP).

- ``VisualPromptLayers``: one ``(n_ctx, width)`` visual prompt per image-tower layer up to the
  prompt depth (VPT-deep; the vision branch of IVLP), drawn from ``normal(0, 0.02)`` as in the
  VPT/IVLP code of MaPLe's repository, float32 whatever CLIP's dtype (as ProMetaR's IVLP). ``backbone.deep_prompts.VisualEncoder`` appends the
  first one after the CLS and patch tokens and swaps in the others before their blocks.
- ``TextPrompts``: the text side of MaPLe and IVLP, a learned context ``ctx`` right after SOS
  plus one ``(n_ctx, width)`` prompt for each text layer ``1 .. depth - 1`` (normal(0, 0.02)),
  which replaces the context tokens before that block. ``ctx`` has CLIP's dtype; the deep text
  prompts are float32 whatever CLIP's dtype (as in MaPLe's and ProMetaR's code). Initialisation follows MaPLe: with
  ``CTX_INIT`` of at least ``n_ctx`` tokens, ``ctx`` starts as the embeddings of its first
  ``n_ctx`` tokens and the prompt reads ``"<CTX_INIT> <text>."`` (so "a photo of a" with
  ``N_CTX=2`` learns "a photo" and keeps "of a" fixed); otherwise ``ctx ~ normal(0, 0.02)``
  and the prompt reads ``"X .. X <text>."``. ``n_ctx=0`` gives a fixed template with no text
  parameter (VPT's text side).
- ``IndependentPrompts``: ``TextPrompts`` plus independent ``VisualPromptLayers`` (IVLP; VPT
  with a fixed text side).
- ``DeepPromptCLIP``: CoOp's ``PromptCLIP`` whose two towers take the learner's prompts, with
  ``pair_logits(images, texts)`` (any texts in place of class names, for GRAM). The prompt
  tensors are the learner's only parameters and every forward reads them, so
  ``torch.func.functional_call`` can substitute them.
"""
from typing import List, Optional, Tuple

import torch
from clip.model import CLIP
from torch import nn

from trainers.backbone.prompt_learner import (PromptTokenizer, assemble_prompts, count_tokens, initial_context,
                                              prompts_from_tokens)
from trainers.backbone.prompt_trainer import PromptCLIP
from trainers.backbone.text_encoder import encode_prompts_in_chunks

PROMPT_STD = 0.02


def normal_prompts(count: int, n_ctx: int, width: int, dtype: torch.dtype) -> nn.ParameterList:
    """``count`` prompts of shape ``(n_ctx, width)`` drawn from ``normal(0, 0.02)``."""
    prompts = nn.ParameterList()
    for _ in range(count):
        prompt = torch.empty(n_ctx, width, dtype=dtype)
        nn.init.normal_(prompt, std=PROMPT_STD)
        prompts.append(nn.Parameter(prompt))
    return prompts


def vision_width(clip_model: CLIP) -> int:
    """Token width of CLIP's ViT image tower (prompts are ViT-only)."""
    if not hasattr(clip_model.visual, "conv1") or not hasattr(clip_model.visual, "transformer"):
        raise ValueError("visual prompts need a ViT image tower; this CLIP has a ResNet one")
    return clip_model.visual.conv1.weight.shape[0]


def check_depth(name: str, depth: int, n_layers: int, minimum: int) -> None:
    """One-line error unless ``minimum <= depth <= n_layers``."""
    if not minimum <= depth <= n_layers:
        raise ValueError(f"{name} must be between {minimum} and the {n_layers} layers of this CLIP tower, got {depth}")


def require_prompts(method_cfg, method_key: str, purpose: str, *keys: str) -> None:
    """One-line error unless each of the prompt sizes ``TRAINER.<method_key>.<key>`` is at least 1."""
    values = [method_cfg[key] for key in keys]
    if min(values) < 1:
        raise ValueError(f"{purpose}: TRAINER.{method_key}.{' and '.join(keys)} must be >= 1, "
                         f"got {' and '.join(map(str, values))}")


def maple_context(clip_model: CLIP, n_ctx: int, ctx_init: str) -> Tuple[torch.Tensor, str]:
    """MaPLe's context initialisation: ``(ctx (n_ctx, width), prompt prefix words)``."""
    words = ctx_init.replace("_", " ").strip()
    if words and n_ctx <= count_tokens(words):
        ctx, _ = initial_context(clip_model, n_ctx, words)
        return ctx[:n_ctx].clone(), words
    if n_ctx == 0:
        return torch.empty(0, clip_model.ln_final.weight.shape[0], dtype=clip_model.dtype), ""
    return initial_context(clip_model, n_ctx)


class VisualPromptLayers(nn.Module):
    """Deep visual prompts: ``prompts[j]`` is layer j's ``(n_ctx, width)`` prompt."""

    def __init__(self, clip_model: CLIP, n_ctx: int, depth: int):
        super().__init__()
        count = depth if n_ctx > 0 else 0
        width = vision_width(clip_model) if count else 0
        if count:
            check_depth("the visual prompt depth", depth, len(clip_model.visual.transformer.resblocks), 1)
        self.prompts = normal_prompts(count, n_ctx, width, torch.float32)

    def forward(self) -> List[torch.Tensor]:
        return list(self.prompts)


class TextPrompts(nn.Module):
    """Learned text context plus deep text prompts for layers ``1 .. depth - 1`` (MaPLe / IVLP)."""

    def __init__(self, clip_model: CLIP, classnames: List[str], n_ctx: int, ctx_init: str, depth: int):
        super().__init__()
        check_depth("the text prompt depth", depth, len(clip_model.transformer.resblocks), 0)
        ctx, self.prompt_prefix = maple_context(clip_model, n_ctx, ctx_init)
        self.n_ctx = n_ctx
        if n_ctx > 0:
            self.ctx = nn.Parameter(ctx)
        else:
            self.register_buffer("ctx", ctx, persistent=False)
        width = ctx.shape[-1]
        self.deep_text = normal_prompts(max(depth - 1, 0) if n_ctx > 0 else 0, n_ctx, width, torch.float32)
        self.classnames = [name.replace("_", " ") for name in classnames]
        self.tokenizer = PromptTokenizer(clip_model.token_embedding, n_ctx, self.prompt_prefix,
                                         clip_model.context_length)
        tokens = self.tokenizer(self.classnames)
        self.register_buffer("token_prefix", tokens.prefix, persistent=False)
        self.register_buffer("token_suffix", tokens.suffix, persistent=False)
        self.register_buffer("tokenized_prompts", tokens.tokenized, persistent=False)

    @property
    def n_cls(self) -> int:
        return len(self.classnames)

    def forward(self, rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Prompt embeddings of all classes (or of the class indices ``rows``)."""
        if rows is None:
            rows = torch.arange(self.n_cls)
        rows = rows.to(self.token_prefix.device)
        return assemble_prompts(self.ctx, self.token_prefix[rows], self.token_suffix[rows])

    def prompts_for_texts(self, texts: List[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(embeddings, tokenized)`` of prompts whose "class names" are ``texts``."""
        return prompts_from_tokens(self.ctx, self.tokenizer(texts))

    def deep_text_prompts(self) -> List[torch.Tensor]:
        """Prompts for text layers 1 .. depth - 1."""
        return list(self.deep_text)

    def visual_prompts(self) -> List[torch.Tensor]:
        """Prompts for image layers 0 .. depth - 1 (none here)."""
        return []


class IndependentPrompts(TextPrompts):
    """IVLP: text prompts and visual prompts learned independently of each other."""

    def __init__(self, clip_model: CLIP, classnames: List[str], n_ctx_text: int, ctx_init: str, depth_text: int,
                 n_ctx_vision: int, depth_vision: int):
        super().__init__(clip_model, classnames, n_ctx_text, ctx_init, depth_text)
        self.vision = VisualPromptLayers(clip_model, n_ctx_vision, depth_vision)

    def visual_prompts(self) -> List[torch.Tensor]:
        return self.vision()


class DeepPromptCLIP(PromptCLIP):
    """``PromptCLIP`` with deep text prompts and visual prompts taken from its prompt learner."""

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4:
            raise ValueError(f"{type(self).__name__} prompts the image tower, so it needs images (B, 3, H, W), "
                             f"not cached features of shape {tuple(images.shape)}")
        return self.image_encoder(images, self.prompt_learner.visual_prompts())

    def _encode_prompts(self, count: int, build) -> torch.Tensor:
        features = encode_prompts_in_chunks(self.text_encoder, count, build, self.text_chunk,
                                            self.prompt_learner.deep_text_prompts())
        return features / features.norm(dim=-1, keepdim=True)

    def _encode_class_prompts(self) -> torch.Tensor:
        learner = self.prompt_learner
        return self._encode_prompts(learner.n_cls, lambda rows: (learner(rows), learner.tokenized_prompts[rows]))

    def text_features_for(self, texts: List[str]) -> torch.Tensor:
        """Normalised text features of the prompts built around ``texts``."""
        embeddings, tokenized = self.prompt_learner.prompts_for_texts(list(texts))
        return self._encode_prompts(len(texts), lambda rows: (embeddings[rows], tokenized[rows]))

    def pair_logits(self, images: torch.Tensor, texts: List[str]) -> torch.Tensor:
        """``[N_images, N_texts]`` logits, ``texts`` standing in for class names."""
        return self.logit_scale.exp() * self.image_features(images) @ self.text_features_for(texts).t()
