"""Zero-shot classification with a (tiny) CLIP: the check that the toy CLIP learned the world's words.

Class prompts follow CoOp's ZeroshotCLIP (one hand-written template, "a photo of a {}."), encoded with
CLIP's own full-length ``encode_text``; images are CLIP-normalised at their stored resolution.
"""
from typing import Sequence

import trainers.backbone.quiet_clip  # noqa: F401,I001  (before clip: no pkg_resources warning)
import clip
import numpy as np
import torch
import torch.nn.functional as F
from clip.model import CLIP

from datasets.toy_world.pretrain import images_to_tensor

ZERO_SHOT_TEMPLATE = "a photo of a {}."


@torch.no_grad()
def zero_shot_predictions(
    model: CLIP, images: np.ndarray, classnames: Sequence[str], template: str = ZERO_SHOT_TEMPLATE, batch_size: int = 512
) -> np.ndarray:
    """Predicted label of every uint8 ``(N, H, W, 3)`` image among ``classnames`` (the model is cast to
    fp32 in place, since fp16 CLIP weights do not run on a CPU)."""
    model = model.float().eval()
    prompts = clip.tokenize([template.format(name) for name in classnames])
    class_features = F.normalize(model.encode_text(prompts), dim=-1)
    predictions = []
    for start in range(0, len(images), batch_size):
        image_features = F.normalize(model.encode_image(images_to_tensor(images[start : start + batch_size])), dim=-1)
        predictions.append((image_features @ class_features.t()).argmax(dim=-1).numpy())
    return np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64)


def zero_shot_accuracy(
    model: CLIP, images: np.ndarray, labels: Sequence[int], classnames: Sequence[str], template: str = ZERO_SHOT_TEMPLATE
) -> float:
    """Top-1 accuracy in percent."""
    if len(images) == 0:
        raise ValueError("zero_shot_accuracy needs at least one image")
    predictions = zero_shot_predictions(model, images, classnames, template)
    return float(100.0 * np.mean(predictions == np.asarray(labels)))
