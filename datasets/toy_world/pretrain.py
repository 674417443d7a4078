"""Contrastive pretraining of a tiny CLIP on the toy world's image-text corpus (CPU, minutes).

The model is OpenAI's CLIP architecture at small widths (``trainers.backbone.tiny_clip.build_tiny_clip``),
trained with CLIP's symmetric image-text cross-entropy and a learnable temperature (Radford et al., 2021).
Choices of our own, each for speed or for the toy captions:

- Captions are encoded up to the longest caption of the batch instead of all 77 positions. With CLIP's
  causal mask the end-of-text feature does not depend on later positions, so this is exact, and the saved
  model keeps ``context_length=77`` for ``clip.tokenize``.
- Identical captions in a batch are all positives of each other (soft targets spread over them), since
  templated captions repeat and would otherwise be pushed apart.
- AdamW (CLIP's betas 0.9/0.98, eps 1e-6) with weight decay on matrices only, linear warmup then cosine
  decay, no data augmentation (every image is a fresh random scene).
"""
import math
import time
from typing import Dict, Sequence

import clip
import numpy as np
import torch
import torch.nn.functional as F
from clip.model import CLIP
from tqdm import tqdm

from datasets.toy_world.presets import PretrainSettings
from trainers.backbone.tiny_clip import build_tiny_clip
from trainers.backbone.transforms import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD

MAX_LOGIT_SCALE = math.log(100.0)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` images -> CLIP-normalised float ``(N, 3, H, W)``."""
    pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(CLIP_PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_PIXEL_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


def encode_captions(model: CLIP, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text(tokens)``, computed only up to the longest caption's end-of-text token."""
    end_positions = tokens.argmax(dim=-1)
    length = int(end_positions.max()) + 1
    tokens = tokens[:, :length]
    mask = model.build_attention_mask()[:length, :length]
    hidden = (model.token_embedding(tokens) + model.positional_embedding[:length]).permute(1, 0, 2)
    for block in model.transformer.resblocks:
        normed = block.ln_1(hidden)
        hidden = hidden + block.attn(normed, normed, normed, need_weights=False, attn_mask=mask)[0]
        hidden = hidden + block.mlp(block.ln_2(hidden))
    hidden = model.ln_final(hidden.permute(1, 0, 2))
    return hidden[torch.arange(len(tokens)), end_positions] @ model.text_projection


def contrastive_loss(
    image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor, caption_ids: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE; pairs whose captions are identical (same ``caption_ids``) count as positives."""
    image_features = F.normalize(image_features, dim=-1)
    text_features = F.normalize(text_features, dim=-1)
    logits = logit_scale.exp() * image_features @ text_features.t()
    same = (caption_ids[:, None] == caption_ids[None, :]).float()
    targets = same / same.sum(dim=1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets))


def _optimizer(model: CLIP, settings: PretrainSettings) -> torch.optim.Optimizer:
    decayed = [p for name, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in name]
    kept = [p for name, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in name)]
    groups = [{"params": decayed, "weight_decay": settings.weight_decay}, {"params": kept, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=settings.lr, betas=(0.9, 0.98), eps=1e-6)


def _lr_factor(step: int, settings: PretrainSettings) -> float:
    if step < settings.warmup_steps:
        return (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def pretrain_clip(
    images: np.ndarray,
    captions: Sequence[str],
    settings: PretrainSettings,
    seed: int = 0,
    progress: bool = True,
) -> "tuple[CLIP, Dict[str, float]]":
    """Train a tiny CLIP on uint8 ``(N, H, W, 3)`` images and their captions.

    Returns the model (fp32, eval mode) and a summary: seconds, first and last losses (each averaged
    over the first/last tenth of the steps).
    """
    if len(images) != len(captions) or len(images) < 2:
        raise ValueError(f"need at least 2 images with one caption each, got {len(images)} images, {len(captions)} captions")
    started = time.time()
    resolution = images.shape[1]
    model = build_tiny_clip(
        arch="vit",
        embed_dim=settings.embed_dim,
        image_resolution=resolution,
        vision_layers=settings.vision_layers,
        vision_width=settings.vision_width,
        vision_patch_size=settings.vision_patch_size,
        transformer_width=settings.transformer_width,
        transformer_layers=settings.transformer_layers,
        seed=seed,
    ).train()
    tokens = clip.tokenize(list(captions))
    _, caption_ids = np.unique(np.asarray(captions, dtype=object), return_inverse=True)
    caption_ids = torch.from_numpy(caption_ids.reshape(-1))
    optimizer = _optimizer(model, settings)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, settings))
    batch_size = min(settings.batch_size, len(images))
    order_rng = np.random.default_rng(seed)
    order = order_rng.permutation(len(images))
    cursor, losses = 0, []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in tqdm(range(settings.steps), desc="pretrain tiny CLIP", disable=not progress, leave=False):
            if cursor + batch_size > len(order):
                order, cursor = order_rng.permutation(len(images)), 0
            batch = np.sort(order[cursor : cursor + batch_size])
            cursor += batch_size
            image_features = model.encode_image(images_to_tensor(images[batch]))
            text_features = encode_captions(model, tokens[batch])
            loss = contrastive_loss(image_features, text_features, model.logit_scale, caption_ids[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)
            losses.append(float(loss))
    tenth = max(1, len(losses) // 10)
    summary = {
        "seconds": time.time() - started,
        "first_loss": float(np.mean(losses[:tenth])),
        "last_loss": float(np.mean(losses[-tenth:])),
    }
    return model.eval(), summary
