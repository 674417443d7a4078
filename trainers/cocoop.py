"""CoCoOp (Zhou et al., "Conditional Prompt Learning for Vision-Language Models", CVPR 2022).

A lightweight meta-net (Linear(d, d/16) - ReLU - Linear(d/16, width), CoOp's layout and names)
maps each image's normalised feature to a bias added to every context vector, so each image has
its own prompts ``[ctx + pi(x)] <class>.``. Batches of more than one image are handled by
encoding the B x n_cls per-image prompts together, ``TEXT_CHUNK`` prompts per text-encoder pass
(checkpointed under autograd, so memory is one chunk's activations, not B x n_cls prompts').
Keys: ``TRAINER.COCOOP.N_CTX, CTX_INIT, PREC`` (CoCoOp's; class token at the end, shared
context), plus ``CACHE_IMAGE_FEATURES, CACHE_VIEWS, TEXT_CHUNK``.
"""
from collections import OrderedDict

import torch
from clip.model import CLIP
from dassl.engine import TRAINER_REGISTRY
from torch import nn
from yacs.config import CfgNode as CN

from trainers.backbone.prompt_learner import PromptLearner, assemble_prompts
from trainers.backbone.prompt_trainer import PromptCLIP, PromptTrainer
from trainers.backbone.text_encoder import encode_prompts_in_chunks
from trainers.config import clip_trainer_keys, config_section


class ConditionalPromptLearner(PromptLearner):
    """CoOp's prompt learner plus CoCoOp's meta-net producing an image-conditioned context shift."""

    def __init__(self, clip_model: CLIP, classnames: list, n_ctx: int, ctx_init: str, half: bool):
        super().__init__(clip_model, classnames, n_ctx=n_ctx, ctx_init=ctx_init)
        vis_dim = clip_model.visual.output_dim
        ctx_dim = self.ctx.shape[-1]
        self.meta_net = nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(vis_dim, vis_dim // 16)),
            ("relu", nn.ReLU(inplace=True)),
            ("linear2", nn.Linear(vis_dim // 16, ctx_dim)),
        ]))
        if half:
            self.meta_net.half()

    def conditional_context(self, image_features: torch.Tensor) -> torch.Tensor:
        """``(B, n_ctx, width)``: the context shifted by the meta-net output of each image."""
        bias = self.meta_net(image_features.type(self.meta_net.linear1.weight.dtype))
        return self.ctx.unsqueeze(0) + bias.unsqueeze(1).type(self.ctx.dtype)


class CoCoOpCLIP(PromptCLIP):
    """Logits of each image against its own class prompts."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        image_features = self.image_features(images)
        learner = self.prompt_learner
        contexts = learner.conditional_context(image_features)
        batch, n_cls = contexts.shape[0], learner.n_cls

        def build(indices: torch.Tensor):
            image_rows = indices.div(n_cls, rounding_mode="floor").to(contexts.device)
            tokens = learner.class_tokens(indices % n_cls)
            return assemble_prompts(contexts[image_rows], tokens.prefix, tokens.suffix), tokens.tokenized

        text_features = encode_prompts_in_chunks(self.text_encoder, batch * n_cls, build, self.text_chunk)
        text_features = text_features / text_features.norm(dim=-1, keepdim=True)
        text_features = text_features.view(batch, n_cls, -1)
        return self.logit_scale.exp() * torch.einsum("bd,bcd->bc", image_features, text_features)

    def pair_logits(self, images: torch.Tensor, texts: list) -> torch.Tensor:
        """Each image against prompts on ``texts`` built from its own conditioned context."""
        image_features = self.image_features(images)
        learner = self.prompt_learner
        contexts = learner.conditional_context(image_features)
        tokens = learner.tokenizer(list(texts))
        batch, n_texts = contexts.shape[0], len(texts)
        device = contexts.device
        prompts = assemble_prompts(contexts.repeat_interleave(n_texts, dim=0),
                                   tokens.prefix.to(device).repeat(batch, 1, 1),
                                   tokens.suffix.to(device).repeat(batch, 1, 1))
        text_features = self.text_encoder(prompts, tokens.tokenized.to(device).repeat(batch, 1))
        text_features = (text_features / text_features.norm(dim=-1, keepdim=True)).view(batch, n_texts, -1)
        return self.logit_scale.exp() * torch.einsum("bd,btd->bt", image_features, text_features)


@config_section
def cocoop_config(cfg: CN) -> None:
    """CoCoOp's keys (``TRAINER.COCOOP``)."""
    cfg.TRAINER.COCOOP = clip_trainer_keys(N_CTX=16, CTX_INIT="", CACHE_IMAGE_FEATURES=False, CACHE_VIEWS=1)


@TRAINER_REGISTRY.register()
class CoCoOp(PromptTrainer):
    """Conditional Context Optimization: context + per-image meta-net shift, frozen CLIP."""

    method_key = "COCOOP"
    image_tower_frozen = True

    def build_custom_clip(self, clip_model: CLIP, classnames: list) -> CoCoOpCLIP:
        cfg = self.method_cfg
        learner = ConditionalPromptLearner(clip_model, classnames, cfg.N_CTX, cfg.CTX_INIT, self.precision == "fp16")
        print(f'Initial context: "{learner.prompt_prefix}"')
        print(f"Number of context words (tokens): {learner.n_ctx}")
        return CoCoOpCLIP(clip_model, learner, cfg.TEXT_CHUNK)
