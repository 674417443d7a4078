"""MaPLe (Khattak et al., "MaPLe: Multi-modal Prompt Learning", CVPR 2023).

Text prompts: a learned context (``N_CTX`` tokens after SOS, MaPLe's initialisation from
``CTX_INIT``, see ``trainers.vl_prompts``) plus one learned prompt per text layer
``1 .. PROMPT_DEPTH - 1``. Vision prompts are not free parameters: each text prompt is mapped to
the image tower's width by its own linear "coupling function" (``proj`` for the layer-0 context,
``compound_prompt_projections[j]`` for deep layer ``j + 1``), so layer j of both towers carries
prompts coupled through ``F_j`` (the paper's V-L coupling, Eq. 4-6). Trainable: the text context,
the deep text prompts and the projections. Precision as in MaPLe's code: ``ctx`` and ``proj`` follow
CLIP's dtype (fp16 with ``PREC fp16``); the deep text prompts and their coupling layers
``compound_prompt_projections`` are float32 whatever ``PREC``. Keys: ``TRAINER.MAPLE.N_CTX, CTX_INIT, PREC,
PROMPT_DEPTH`` (MaPLe's; depth >= 1, 1 = shallow MaPLe), plus ``TEXT_CHUNK``.
"""
from typing import List

import torch
from clip.model import CLIP
from dassl.engine import TRAINER_REGISTRY
from torch import nn
from yacs.config import CfgNode as CN

from trainers.backbone.prompt_trainer import PromptTrainer
from trainers.config import clip_trainer_keys, config_section
from trainers.vl_prompts import DeepPromptCLIP, TextPrompts, check_depth, vision_width


class MultiModalPromptLearner(TextPrompts):
    """MaPLe's prompts: text context + deep text prompts, and their projections to the image tower."""

    def __init__(self, clip_model: CLIP, classnames: List[str], n_ctx: int, ctx_init: str, depth: int):
        check_depth("TRAINER.MAPLE.PROMPT_DEPTH", depth, len(clip_model.visual.transformer.resblocks), 1)
        if n_ctx < 1:
            raise ValueError(f"TRAINER.MAPLE.N_CTX must be >= 1, got {n_ctx}")
        super().__init__(clip_model, classnames, n_ctx, ctx_init, depth)
        text_width, image_width = self.ctx.shape[-1], vision_width(clip_model)
        self.proj = nn.Linear(text_width, image_width).type(clip_model.dtype)
        self.compound_prompt_projections = nn.ModuleList(nn.Linear(text_width, image_width) for _ in range(depth - 1))

    def visual_prompts(self) -> List[torch.Tensor]:
        """Layer j's visual prompt is the projection of layer j's text prompt."""
        deep = [project(prompt) for project, prompt in zip(self.compound_prompt_projections, self.deep_text)]
        return [self.proj(self.ctx), *deep]


@config_section
def maple_config(cfg: CN) -> None:
    """MaPLe's keys (``TRAINER.MAPLE``)."""
    cfg.TRAINER.MAPLE = clip_trainer_keys(N_CTX=2, CTX_INIT="a photo of a", PROMPT_DEPTH=9)


@TRAINER_REGISTRY.register()
class MaPLe(PromptTrainer):
    """Multi-modal prompt learning: coupled text and visual prompts, frozen CLIP."""

    method_key = "MAPLE"

    def build_custom_clip(self, clip_model: CLIP, classnames: list) -> DeepPromptCLIP:
        maple = self.method_cfg
        learner = MultiModalPromptLearner(clip_model, classnames, maple.N_CTX, maple.CTX_INIT, maple.PROMPT_DEPTH)
        print(f'MaPLe design: Multi-modal Prompt Learning; initial context: "{learner.prompt_prefix}"')
        print(f"Number of MaPLe context words (tokens): {learner.n_ctx}; prompt depth: {maple.PROMPT_DEPTH}")
        return DeepPromptCLIP(clip_model, learner, maple.TEXT_CHUNK)
