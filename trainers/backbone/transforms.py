"""CLIP's test-time image preprocessing, built from torchvision transforms.

Equal to ``clip.load``'s preprocess: bicubic resize of the short side, center crop, RGB,
tensor, normalisation with CLIP's pixel mean and std (the values CoOp's configs put in
``INPUT.PIXEL_MEAN`` / ``INPUT.PIXEL_STD``).
"""
from PIL import Image
from torchvision import transforms as T

CLIP_PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode (L, RGBA, P, ...) to RGB."""
    return image.convert("RGB")


def clip_preprocess(resolution: int) -> T.Compose:
    """The PIL-image -> normalised tensor transform CLIP uses at ``resolution`` pixels."""
    return T.Compose([
        T.Resize(resolution, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(resolution),
        to_rgb,
        T.ToTensor(),
        T.Normalize(CLIP_PIXEL_MEAN, CLIP_PIXEL_STD),
    ])
