"""VPT (Jia et al., "Visual Prompt Tuning", ECCV 2022) on CLIP, as the VPT baseline of MaPLe's repository.

Deep visual prompting: ``N_CTX_VISION`` learnable tokens enter the image tower at each of the first
``PROMPT_DEPTH_VISION`` layers (1 = shallow VPT); the text side is CLIP's with the fixed prompt
``"<CTX_INIT> <class>."`` ("a photo of a <class>."), encoded once, ``TEXT_CHUNK`` classes per
pass. Only the visual prompts train, with cross-entropy over the class logits. Precision as the
reference: the whole CLIP runs in float32 (``PREC fp16`` loads it in fp32, with a log line; ``amp``
keeps fp32 weights under autocast), and so do the prompts. Keys:
``TRAINER.VPT.N_CTX_VISION, PROMPT_DEPTH_VISION, CTX_INIT, PREC, TEXT_CHUNK``.
"""
from typing import List, Optional

import torch
from clip.model import CLIP
from dassl.engine import TRAINER_REGISTRY
from yacs.config import CfgNode as CN

from trainers.backbone.prompt_trainer import PromptTrainer
from trainers.config import clip_trainer_keys, config_section
from trainers.vl_prompts import DeepPromptCLIP, IndependentPrompts, require_prompts


class VPTCLIP(DeepPromptCLIP):
    """CLIP with deep visual prompts; the fixed class text features are encoded once per device."""

    fixed_class_text: Optional[torch.Tensor] = None

    def class_text_features(self) -> torch.Tensor:
        if self.fixed_class_text is None or self.fixed_class_text.device != self.logit_scale.device:
            with torch.no_grad():
                self.fixed_class_text = self._encode_class_prompts()
        return self.fixed_class_text


def build_vpt_clip(clip_model: CLIP, classnames: List[str], n_ctx: int, depth: int, template_words: str,
                   text_chunk: int = 256) -> VPTCLIP:
    """VPT's model: ``depth`` layers of ``n_ctx`` visual prompts, text fixed to ``"<template_words> <text>."``."""
    prompts = IndependentPrompts(clip_model, classnames, n_ctx_text=0, ctx_init=template_words, depth_text=0,
                                 n_ctx_vision=n_ctx, depth_vision=depth)
    return VPTCLIP(clip_model, prompts, text_chunk)


@config_section
def vpt_config(cfg: CN) -> None:
    """VPT's keys (``TRAINER.VPT``)."""
    cfg.TRAINER.VPT = clip_trainer_keys(
        N_CTX_VISION=8,  # visual prompt length per layer
        PROMPT_DEPTH_VISION=12,  # number of layers with prompts (1 = shallow)
        CTX_INIT="a photo of a",  # fixed text template
    )


@TRAINER_REGISTRY.register()
class VPT(PromptTrainer):
    """Deep visual prompt tuning: visual prompts per layer, frozen CLIP, hand-written text prompt."""

    method_key = "VPT"

    @classmethod
    def clip_precision(cls, prec: str) -> str:
        if prec == "fp16":
            print("VPT: CLIP runs in fp32 as in the reference VPT (PREC fp16 applies to no tensor here)")
            return "fp32"
        return prec

    def check_cfg(self, cfg) -> None:
        super().check_cfg(cfg)
        require_prompts(cfg.TRAINER.VPT, "VPT", "VPT trains visual prompts", "N_CTX_VISION", "PROMPT_DEPTH_VISION")

    def build_custom_clip(self, clip_model: CLIP, classnames: list) -> VPTCLIP:
        vpt = self.method_cfg
        print(f'Vision prompting: {vpt.N_CTX_VISION} tokens in each of {vpt.PROMPT_DEPTH_VISION} layers; '
              f'fixed text prompt "{vpt.CTX_INIT} <class>."')
        return build_vpt_clip(clip_model, classnames, vpt.N_CTX_VISION, vpt.PROMPT_DEPTH_VISION, vpt.CTX_INIT,
                              vpt.TEXT_CHUNK)
