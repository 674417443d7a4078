"""CoOp (Zhou et al., "Learning to Prompt for Vision-Language Models", IJCV 2022).

Learnable context vectors replace the hand-written words of a prompt; the class logits are
``exp(logit_scale) * cos(image feature, text feature of "[ctx] <class>.")`` and only the context
is trained, with cross-entropy, while both CLIP towers stay frozen. Keys: ``TRAINER.COOP.N_CTX,
CTX_INIT, CSC, CLASS_TOKEN_POSITION, PREC`` (CoOp's), plus ``CACHE_IMAGE_FEATURES,
CACHE_VIEWS`` (frozen-image-tower fast path) and ``TEXT_CHUNK`` (classes per text pass).
The prompt learner, text encoder and trainer plumbing are the shared ones in
``trainers.backbone``.
"""
from clip.model import CLIP
from dassl.engine import TRAINER_REGISTRY
from yacs.config import CfgNode as CN

from trainers.backbone.prompt_trainer import PromptCLIP, PromptTrainer, build_class_prompt_learner
from trainers.config import clip_trainer_keys, config_section


@config_section
def coop_config(cfg: CN) -> None:
    """CoOp's keys (``TRAINER.COOP``)."""
    cfg.TRAINER.COOP = clip_trainer_keys(
        N_CTX=16,  # number of context vectors
        CSC=False,  # class-specific context
        CTX_INIT="",  # initialization words
        CLASS_TOKEN_POSITION="end",  # 'middle' or 'end' or 'front'
        CACHE_IMAGE_FEATURES=False,  # frozen-image-tower fast path
        CACHE_VIEWS=1,  # augmented views cached per training image
    )


@TRAINER_REGISTRY.register()
class CoOp(PromptTrainer):
    """Context Optimization: learned prompt context, frozen CLIP."""

    method_key = "COOP"
    image_tower_frozen = True

    def build_custom_clip(self, clip_model: CLIP, classnames: list) -> PromptCLIP:
        prompt_learner = build_class_prompt_learner(clip_model, classnames, self.method_cfg)
        return PromptCLIP(clip_model, prompt_learner, self.method_cfg.TEXT_CHUNK)
