"""The test-time views of TPT (Shu et al., NeurIPS 2022), written after its published procedure.

View 0 is the test image resized and centre-cropped (CLIP's preprocessing). Every other view starts
from a random resized crop (bilinear, torchvision's default, as TPT) and a random horizontal flip.
ImageNet and its variants stop there. Every other dataset (the fine-grained sets) gets TPT's AugMix
(Hendrycks et al., ICLR 2020, at severity 1):
- three chains, each of 1-3 operations drawn uniformly from the nine AugMix operations below,
  applied to the crop;
- the chains mixed with weights ``w ~ Dirichlet(1, 1, 1)`` after normalisation;
- that mixture blended with the normalised crop as ``m * crop + (1 - m) * mixture``, ``m ~ Beta(1, 1)``.
Every operation takes a strength drawn from ``uniform(0.1, severity)`` (out of 10):
- autocontrast and equalize (no strength);
- posterize to ``4 - int(s * 4 / 10)`` bits;
- rotate by ``int(s * 30 / 10)`` degrees;
- solarize above ``256 - int(s * 256 / 10)``;
- shear x / y by ``s * 0.3 / 10``;
- translate x / y by ``int(s * (size / 3) / 10)`` pixels.
Angles, shears and translations take a random sign. Affine operations resample bilinearly.
Randomness comes from numpy's global generator (seeded by ``set_random_seed``).
"""
from typing import Callable, List

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image, ImageOps

from trainers.backbone.transforms import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, clip_preprocess

SEVERITY = 1
CHAINS = 3
IMAGENET_FAMILY = ("ImageNet", "ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR")
Operation = Callable[[Image.Image, int], Image.Image]


def _strength(severity: int) -> float:
    return float(np.random.uniform(low=0.1, high=severity))


def _int_level(severity: int, maximum: float) -> int:
    return int(_strength(severity) * maximum / 10)


def _signed(value: float) -> float:
    return -value if np.random.uniform() > 0.5 else value


def _affine(image: Image.Image, coefficients: tuple) -> Image.Image:
    return image.transform(image.size, Image.AFFINE, coefficients, resample=Image.BILINEAR)


def autocontrast(image: Image.Image, severity: int) -> Image.Image:
    return ImageOps.autocontrast(image)


def equalize(image: Image.Image, severity: int) -> Image.Image:
    return ImageOps.equalize(image)


def posterize(image: Image.Image, severity: int) -> Image.Image:
    return ImageOps.posterize(image, 4 - _int_level(severity, 4))


def rotate(image: Image.Image, severity: int) -> Image.Image:
    return image.rotate(_signed(_int_level(severity, 30)), resample=Image.BILINEAR)


def solarize(image: Image.Image, severity: int) -> Image.Image:
    return ImageOps.solarize(image, 256 - _int_level(severity, 256))


def shear_x(image: Image.Image, severity: int) -> Image.Image:
    return _affine(image, (1, _signed(_strength(severity) * 0.3 / 10), 0, 0, 1, 0))


def shear_y(image: Image.Image, severity: int) -> Image.Image:
    return _affine(image, (1, 0, 0, _signed(_strength(severity) * 0.3 / 10), 1, 0))


def translate_x(image: Image.Image, severity: int) -> Image.Image:
    return _affine(image, (1, 0, _signed(_int_level(severity, image.size[0] / 3)), 0, 1, 0))


def translate_y(image: Image.Image, severity: int) -> Image.Image:
    return _affine(image, (1, 0, 0, 0, 1, _signed(_int_level(severity, image.size[1] / 3))))


OPERATIONS: List[Operation] = [autocontrast, equalize, rotate, solarize, shear_x, shear_y, translate_x,
                               translate_y, posterize]


def uses_augmix(dataset_name: str, augmix: bool) -> bool:
    """TPT's rule: AugMix views for every dataset outside the ImageNet family (when ``augmix`` is on)."""
    return augmix and dataset_name not in IMAGENET_FAMILY


class AugMixView:
    """PIL crop -> normalised tensor: TPT's AugMix of the crop (see the module docstring)."""

    def __init__(self, normalize: Callable, operations: List[Operation] = OPERATIONS, severity: int = SEVERITY):
        self.normalize = normalize
        self.operations = operations
        self.severity = severity

    def __call__(self, crop: Image.Image) -> torch.Tensor:
        original = self.normalize(crop)
        weights = np.float32(np.random.dirichlet([1.0] * CHAINS))
        blend = float(np.float32(np.random.beta(1.0, 1.0)))
        mixture = torch.zeros_like(original)
        for weight in weights:
            image = crop.copy()
            for _ in range(np.random.randint(1, 4)):
                image = self.operations[np.random.randint(len(self.operations))](image, self.severity)
            mixture += float(weight) * self.normalize(image)
        return blend * original + (1 - blend) * mixture


class TestTimeViews:
    """PIL image -> ``(n_views, 3, H, W)``: the centre-cropped image, then ``n_views - 1`` augmented views."""

    __test__ = False  # not a pytest test class

    def __init__(self, resolution: int, n_views: int, augmix: bool):
        self.base = clip_preprocess(resolution)
        self.crop = T.Compose([T.RandomResizedCrop(resolution), T.RandomHorizontalFlip()])
        normalize = T.Compose([T.ToTensor(), T.Normalize(CLIP_PIXEL_MEAN, CLIP_PIXEL_STD)])
        self.finish = AugMixView(normalize) if augmix else normalize
        self.n_views = n_views

    def __call__(self, image) -> torch.Tensor:
        image = image.convert("RGB")
        return torch.stack([self.base(image)] + [self.finish(self.crop(image)) for _ in range(self.n_views - 1)])
