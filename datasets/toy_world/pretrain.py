"""Pretraining of a tiny CLIP on the toy world's image-text corpus (CPU, minutes), in two stages.

The model is OpenAI's CLIP architecture at small widths (``testing.tiny_clip.build_tiny_clip``).

1. Warm start of the image tower: supervised classification of the corpus images' attributes (shape, colour,
   texture, object count, style; one linear head each on the image embedding; a shape, colour or texture
   that differs between the objects of an image is left out of the loss). A contrastive model trained
   from scratch on this budget matches images by colour and layout and never learns shapes (measured: the
   shape words' text features collapse together, a linear probe of the image features reads shapes at
   chance); a CLIP whose image tower starts from a supervised backbone (as in LiT, Zhai et al., 2022) does.
   This is the toy stand-in for the web-scale data that makes CLIP's image tower good.
2. Contrastive image-text training of the whole model with CLIP's symmetric cross-entropy and learnable
   temperature (Radford et al., 2021), the image tower at ``image_lr_scale`` times the learning rate. Batches
   are made of whole contrast groups of the corpus (images that differ in one attribute, see
   ``scenes.sample_contrast_group``), which act as hard negatives.

Choices of our own, for speed or for the toy captions:

- Captions are encoded up to the longest caption of the batch instead of all 77 positions. With CLIP's
  causal mask the end-of-text feature does not depend on later positions, so this is exact, and the saved
  model keeps ``context_length=77`` for ``clip.tokenize``.
- Identical captions in a batch are all positives of each other (soft targets spread over them), since
  templated captions repeat and would otherwise be pushed apart.
- AdamW (CLIP's betas 0.9/0.98, eps 1e-6) with weight decay on matrices only, linear warmup then cosine
  decay in each stage, no data augmentation (every image is a fresh random scene).
"""
import contextlib
import math
import time
from typing import Dict, Iterator, List, Sequence, Tuple

import trainers.backbone.quiet_clip  # noqa: F401,I001  (before clip: no pkg_resources warning)
import clip
import numpy as np
import torch
import torch.nn.functional as F
from clip.model import CLIP
from tqdm import tqdm

from datasets.toy_world.presets import PretrainSettings
from testing.tiny_clip import build_tiny_clip
from trainers.backbone.transforms import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD

MAX_LOGIT_SCALE = math.log(100.0)
IGNORED_LABEL = -100  # an attribute label left out of the warm-start loss


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


def _param_groups(model: torch.nn.Module, lr: float, weight_decay: float, scaled=(), scale: float = 1.0) -> List[dict]:
    """AdamW groups: weight decay on matrices only; parameters whose names start with ``scaled`` at lr * scale."""
    groups: Dict[Tuple[bool, bool], List[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        decayed = parameter.ndim >= 2 and "embedding" not in name
        groups.setdefault((decayed, name.startswith(tuple(scaled))), []).append(parameter)
    return [
        {"params": params, "weight_decay": weight_decay if decayed else 0.0, "lr": lr * (scale if is_scaled else 1.0)}
        for (decayed, is_scaled), params in groups.items()
    ]


def _schedule(optimizer: torch.optim.Optimizer, steps: int, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup, then cosine decay to zero at ``steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup_steps) / max(1, steps - warmup_steps)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _adamw(groups: List[dict]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, betas=(0.9, 0.98), eps=1e-6)


def _masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labels that are not ``IGNORED_LABEL`` (zero when there are none)."""
    summed = F.cross_entropy(logits, labels, ignore_index=IGNORED_LABEL, reduction="sum")
    return summed / (labels != IGNORED_LABEL).sum().clamp(min=1)


def warm_start_image_tower(
    model: CLIP,
    images: np.ndarray,
    attribute_labels: np.ndarray,
    num_values: Sequence[int],
    settings: PretrainSettings,
    rng: np.random.Generator,
    bar: tqdm,
) -> List[float]:
    """Stage 1: train ``model.visual`` to classify every attribute (column of ``attribute_labels``, where
    ``IGNORED_LABEL`` marks a label to leave out) of its images with one linear head per attribute; returns
    the per-step losses."""
    heads = torch.nn.ModuleList(torch.nn.Linear(settings.embed_dim, n) for n in num_values)
    trained = torch.nn.ModuleDict({"visual": model.visual, "heads": heads})
    optimizer = _adamw(_param_groups(trained, settings.lr, settings.weight_decay))
    scheduler = _schedule(optimizer, settings.warm_start_steps, settings.warmup_steps)
    labels = torch.from_numpy(attribute_labels)
    batch_size = min(settings.warm_start_batch_size, len(images))
    losses = []
    for _ in range(settings.warm_start_steps):
        batch = np.sort(rng.choice(len(images), batch_size, replace=False))
        features = model.visual(images_to_tensor(images[batch]))
        loss = sum(_masked_cross_entropy(head(features), labels[batch, k]) for k, head in enumerate(heads))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        bar.update()
    return losses


def train_contrastive(
    model: CLIP,
    images: np.ndarray,
    captions: Sequence[str],
    group_size: int,
    settings: PretrainSettings,
    rng: np.random.Generator,
    bar: tqdm,
) -> List[float]:
    """Stage 2: CLIP's contrastive loss on batches of whole contrast groups (``group_size`` consecutive
    images); returns the per-step losses."""
    tokens = clip.tokenize(list(captions))
    _, caption_ids = np.unique(np.asarray(captions, dtype=object), return_inverse=True)
    caption_ids = torch.from_numpy(caption_ids.reshape(-1))
    groups = _param_groups(model, settings.lr, settings.weight_decay, ("visual.",), settings.image_lr_scale)
    optimizer = _adamw(groups)
    scheduler = _schedule(optimizer, settings.contrastive_steps, settings.warmup_steps)
    num_groups = len(images) // group_size
    groups_per_batch = max(1, min(settings.contrastive_batch_size // group_size, num_groups))
    losses = []
    for _ in range(settings.contrastive_steps):
        chosen = np.sort(rng.choice(num_groups, groups_per_batch, replace=False))
        batch = (chosen[:, None] * group_size + np.arange(group_size)).reshape(-1)
        image_features = model.encode_image(images_to_tensor(images[batch]))
        text_features = encode_captions(model, tokens[batch])
        loss = contrastive_loss(image_features, text_features, model.logit_scale, caption_ids[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)
        losses.append(loss.item())
        bar.update()
    return losses


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block on one torch thread, then restore the thread count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def pretrain_clip(
    images: np.ndarray,
    captions: Sequence[str],
    attribute_labels: np.ndarray,
    num_values: Sequence[int],
    settings: PretrainSettings,
    group_size: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> Tuple[CLIP, Dict[str, float]]:
    """Pretrain a tiny CLIP on uint8 ``(N, H, W, 3)`` images, their captions and their attribute labels
    (``(N, A)`` ints, column ``a`` in ``range(num_values[a])``); the corpus is ordered in contrast groups of
    ``group_size`` consecutive images.

    Returns the model (fp32, eval mode) and a summary: seconds, and the warm-start and contrastive losses
    averaged over the first and last tenth of their steps. Training runs on one torch thread: the tiny model
    is fastest there (no thread hand-offs: 0.029 s per warm-start step against 0.054 s on two threads,
    ``bench/bench_pretrain_load.py``), and the CLIP it gives does not depend on the machine's core count.
    """
    if not len(images) == len(captions) == len(attribute_labels) or len(images) < 2 * group_size:
        raise ValueError(
            f"need images, captions and attribute labels of equal length, at least two groups of {group_size}; "
            f"got {len(images)} images, {len(captions)} captions, {len(attribute_labels)} label rows"
        )
    started = time.time()
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]), one_torch_thread():
        torch.manual_seed(seed)
        model = build_tiny_clip(
            arch="vit",
            embed_dim=settings.embed_dim,
            image_resolution=images.shape[1],
            vision_layers=settings.vision_layers,
            vision_width=settings.vision_width,
            vision_patch_size=settings.vision_patch_size,
            transformer_width=settings.transformer_width,
            transformer_layers=settings.transformer_layers,
            seed=seed,
        ).train()
        total = settings.warm_start_steps + settings.contrastive_steps
        with tqdm(total=total, desc="pretrain tiny CLIP", disable=not progress, leave=False) as bar:
            warm_start = warm_start_image_tower(model, images, attribute_labels, num_values, settings, rng, bar)
            warm_seconds = time.time() - started
            contrastive = train_contrastive(model, images, captions, group_size, settings, rng, bar)
    summary = {"seconds": time.time() - started, "warm_start_seconds": warm_seconds}
    for name, losses in (("warm_start", warm_start), ("contrastive", contrastive)):
        tenth = max(1, len(losses) // 10)
        summary[f"{name}_first_loss"] = float(np.mean(losses[:tenth]))
        summary[f"{name}_last_loss"] = float(np.mean(losses[-tenth:]))
    return model.eval(), summary
