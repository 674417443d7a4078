"""KgCoOp (Yao et al., "Visual-Language Prompt Tuning with Knowledge-guided Context Optimization", CVPR 2023).

The toolbox's subclassing example: CoOp plus one loss term. The learned prompts' class text
features ``w`` are pulled toward those of the dataset's hand-crafted template ``w_clip``
(CoOp's ``CUSTOM_TEMPLATES``), ``loss = CE + W * (1 - mean_c cos(w_c, w_clip_c))``. For unit
vectors ``1 - cos = ||w - w_clip||^2 / 2``, so this is the paper's squared-distance term at the
scale of KgCoOp's code (its ``W = 8.0``). Keys: CoOp's ``TRAINER.COOP.*`` and ``TRAINER.KGCOOP.W``.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from clip.model import CLIP
from dassl.engine import TRAINER_REGISTRY
from yacs.config import CfgNode as CN

from trainers.backbone.prompt_trainer import PromptCLIP
from trainers.backbone.templates import dataset_template, fill_template
from trainers.backbone.text_encoder import encode_texts
from trainers.config import config_section
from trainers.coop import CoOp


@config_section
def kgcoop_config(cfg: CN) -> None:
    """KgCoOp's own key (``TRAINER.KGCOOP``; its prompt reads ``TRAINER.COOP``)."""
    cfg.TRAINER.KGCOOP = CN()
    cfg.TRAINER.KGCOOP.W = 8.0  # weight of the pull toward hand-crafted text features


@TRAINER_REGISTRY.register()
class KgCoOp(CoOp):
    """CoOp regularised toward the hand-crafted prompt's text features."""

    def build_custom_clip(self, clip_model: CLIP, classnames: list) -> PromptCLIP:
        model = super().build_custom_clip(clip_model, classnames)
        template = dataset_template(self.cfg.DATASET.NAME)
        print(f'KgCoOp: hand-crafted prompt "{template}", weight {self.cfg.TRAINER.KGCOOP.W}')
        hand_crafted = encode_texts(clip_model.to(self.device), fill_template(template, classnames), self.method_cfg.TEXT_CHUNK)
        model.register_buffer("hand_crafted_text_features", hand_crafted, persistent=False)
        return model

    def compute_loss(self, images: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        text_features = self.model.class_text_features()
        logits = self.model.logit_scale.exp() * self.model.image_features(images) @ text_features.t()
        knowledge_gap = 1 - F.cosine_similarity(text_features, self.model.hand_crafted_text_features, dim=-1).mean()
        return F.cross_entropy(logits, labels) + self.cfg.TRAINER.KGCOOP.W * knowledge_gap, logits
