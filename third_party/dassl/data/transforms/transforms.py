"""Train/test image pipelines built from ``cfg.INPUT`` (Dassl's ``build_transform``).

Training: resize to ``INPUT.SIZE`` unless a crop does it, then the chosen augmentations in
Dassl's fixed order, ``ToTensor``, and the tensor-level choices (cutout, normalize, gaussian
noise, instance norm). Testing: resize the short side to ``max(INPUT.SIZE)``, center crop,
``ToTensor``, normalize / instance norm. The AutoAugment policies and RandAugment come from
torchvision (``randaugment_fixmatch`` and ``randaugment2`` map to torchvision's RandAugment and
TrivialAugmentWide: same role, not Dassl's exact operation lists).
"""
import random
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torchvision.transforms.functional as F
from torchvision.transforms import (
    AutoAugment,
    AutoAugmentPolicy,
    CenterCrop,
    ColorJitter,
    Compose,
    GaussianBlur,
    Normalize,
    RandAugment,
    RandomApply,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
    TrivialAugmentWide,
)
from torchvision.transforms.functional import InterpolationMode

__all__ = [
    "AVAI_CHOICES",
    "INTERPOLATION_MODES",
    "build_transform",
    "Random2DTranslation",
    "InstanceNormalization",
    "Cutout",
    "GaussianNoise",
]

INTERPOLATION_MODES = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


class Random2DTranslation:
    """With probability ``p``: enlarge by 1/8 and randomly crop back to (height, width); else resize."""

    def __init__(self, height: int, width: int, p: float = 0.5, interpolation=InterpolationMode.BILINEAR):
        self.height = height
        self.width = width
        self.p = p
        self.interpolation = interpolation

    def __call__(self, img):
        if random.uniform(0, 1) > self.p:
            return F.resize(img, [self.height, self.width], interpolation=self.interpolation)
        new_height, new_width = int(round(self.height * 1.125)), int(round(self.width * 1.125))
        enlarged = F.resize(img, [new_height, new_width], interpolation=self.interpolation)
        top = int(round(random.uniform(0, new_height - self.height)))
        left = int(round(random.uniform(0, new_width - self.width)))
        return F.crop(enlarged, top, left, self.height, self.width)


class InstanceNormalization:
    """Normalize a (C, H, W) tensor with its own per-channel mean and std."""

    def __init__(self, eps: float = 1e-8):
        self.eps = eps

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        flat = img.reshape(img.shape[0], -1)
        mean = flat.mean(1).view(-1, 1, 1)
        std = flat.std(1).view(-1, 1, 1)
        return (img - mean) / (std + self.eps)


class Cutout:
    """Zero ``n_holes`` random ``length`` x ``length`` squares of a (C, H, W) tensor."""

    def __init__(self, n_holes: int = 1, length: int = 16):
        self.n_holes = n_holes
        self.length = length

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[1], img.shape[2]
        mask = torch.ones(h, w, dtype=img.dtype)
        half = self.length // 2
        for _ in range(self.n_holes):
            y, x = np.random.randint(h), np.random.randint(w)
            mask[max(y - half, 0):min(y + half, h), max(x - half, 0):min(x + half, w)] = 0
        return img * mask


class GaussianNoise:
    """With probability ``p``, add N(mean, std) noise to a tensor image."""

    def __init__(self, mean: float = 0, std: float = 0.15, p: float = 0.5):
        self.mean = mean
        self.std = std
        self.p = p

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if random.uniform(0, 1) > self.p:
            return img
        return img + torch.randn(img.size()) * self.std + self.mean


Step = Tuple[str, Callable]


def _pil_augmentations(cfg, interp) -> List[Tuple[str, Callable[[], Step]]]:
    """(choice, builder of (description, transform)) for the PIL stage, in Dassl's order."""
    size = cfg.INPUT.SIZE
    inp = cfg.INPUT
    return [
        ("random_translation", lambda: ("random translation", Random2DTranslation(size[0], size[1]))),
        ("random_crop", lambda: (f"random crop (padding = {inp.CROP_PADDING})", RandomCrop(size, padding=inp.CROP_PADDING))),
        ("random_resized_crop", lambda: (
            f"random resized crop (size={size}, scale={inp.RRCROP_SCALE})",
            RandomResizedCrop(size, scale=inp.RRCROP_SCALE, interpolation=interp),
        )),
        ("random_flip", lambda: ("random flip", RandomHorizontalFlip())),
        ("imagenet_policy", lambda: ("imagenet policy", AutoAugment(AutoAugmentPolicy.IMAGENET))),
        ("cifar10_policy", lambda: ("cifar10 policy", AutoAugment(AutoAugmentPolicy.CIFAR10))),
        ("svhn_policy", lambda: ("svhn policy", AutoAugment(AutoAugmentPolicy.SVHN))),
        ("randaugment", lambda: (
            f"randaugment (n={inp.RANDAUGMENT_N}, m={inp.RANDAUGMENT_M})",
            RandAugment(num_ops=inp.RANDAUGMENT_N, magnitude=inp.RANDAUGMENT_M),
        )),
        ("randaugment_fixmatch", lambda: (
            f"randaugment_fixmatch (n={inp.RANDAUGMENT_N})", RandAugment(num_ops=inp.RANDAUGMENT_N)
        )),
        ("randaugment2", lambda: (f"randaugment2 (n={inp.RANDAUGMENT_N})", TrivialAugmentWide())),
        ("colorjitter", lambda: (
            f"color jitter (brightness={inp.COLORJITTER_B}, contrast={inp.COLORJITTER_C}, "
            f"saturation={inp.COLORJITTER_S}, hue={inp.COLORJITTER_H})",
            ColorJitter(brightness=inp.COLORJITTER_B, contrast=inp.COLORJITTER_C,
                        saturation=inp.COLORJITTER_S, hue=inp.COLORJITTER_H),
        )),
        ("randomgrayscale", lambda: ("random gray scale", RandomGrayscale(p=inp.RGS_P))),
        ("gaussian_blur", lambda: (
            f"gaussian blur (kernel={inp.GB_K})", RandomApply([GaussianBlur(inp.GB_K)], p=inp.GB_P)
        )),
    ]


def _tensor_steps(cfg, choices: Sequence[str], is_train: bool) -> List[Step]:
    """The steps after ``ToTensor``, in Dassl's order."""
    inp = cfg.INPUT
    steps: List[Step] = []
    if is_train and "cutout" in choices:
        steps.append((f"cutout (n_holes={inp.CUTOUT_N}, length={inp.CUTOUT_LEN})", Cutout(inp.CUTOUT_N, inp.CUTOUT_LEN)))
    if "normalize" in choices:
        steps.append((
            f"normalization (mean={inp.PIXEL_MEAN}, std={inp.PIXEL_STD})",
            Normalize(mean=inp.PIXEL_MEAN, std=inp.PIXEL_STD),
        ))
    if is_train and "gaussian_noise" in choices:
        steps.append((f"gaussian noise (mean={inp.GN_MEAN}, std={inp.GN_STD})", GaussianNoise(inp.GN_MEAN, inp.GN_STD)))
    if "instance_norm" in choices:
        steps.append(("instance normalization", InstanceNormalization()))
    return steps


AVAI_CHOICES = [
    "random_flip", "random_resized_crop", "normalize", "instance_norm", "random_crop",
    "random_translation", "center_crop", "cutout", "imagenet_policy", "cifar10_policy",
    "svhn_policy", "randaugment", "randaugment_fixmatch", "randaugment2", "gaussian_noise",
    "colorjitter", "randomgrayscale", "gaussian_blur",
]


def _compose(title: str, steps: List[Step]) -> Compose:
    print(title)
    for description, _ in steps:
        print(f"+ {description}")
    return Compose([transform for _, transform in steps])


def build_transform(cfg, is_train: bool = True, choices: Optional[Sequence[str]] = None) -> Optional[Compose]:
    """The training (``is_train``) or test pipeline for ``cfg``; ``choices`` overrides ``INPUT.TRANSFORMS``.

    Returns None when ``INPUT.NO_TRANSFORM`` is set.
    """
    if cfg.INPUT.NO_TRANSFORM:
        print("Note: no transform is applied!")
        return None
    choices = list(cfg.INPUT.TRANSFORMS if choices is None else choices)
    unknown = [c for c in choices if c not in AVAI_CHOICES]
    if unknown:
        raise ValueError(f"Unknown INPUT.TRANSFORMS {unknown}; available: {AVAI_CHOICES}")
    if cfg.INPUT.INTERPOLATION not in INTERPOLATION_MODES:
        raise ValueError(f"Unknown INPUT.INTERPOLATION {cfg.INPUT.INTERPOLATION!r}; available: {sorted(INTERPOLATION_MODES)}")
    interp = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    size = cfg.INPUT.SIZE
    target = f"{size[0]}x{size[1]}"
    to_tensor: Step = ("to torch tensor of range [0, 1]", ToTensor())
    if not is_train:
        steps = [
            (f"resize the smaller edge to {max(size)}", Resize(max(size), interpolation=interp)),
            (f"{target} center crop", CenterCrop(size)),
            to_tensor,
        ]
        return _compose("Building transform_test", steps + _tensor_steps(cfg, choices, is_train=False))
    steps = []
    if "random_crop" not in choices and "random_resized_crop" not in choices:
        steps.append((f"resize to {target}", Resize(size, interpolation=interp)))
    steps += [build() for choice, build in _pil_augmentations(cfg, interp) if choice in choices]
    steps.append(to_tensor)
    return _compose("Building transform_train", steps + _tensor_steps(cfg, choices, is_train=True))
