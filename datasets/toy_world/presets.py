"""Size presets of the toy world: how many images it holds and how long its CLIP is pretrained.

``tiny`` builds in seconds for CI tests, ``small`` for quick looks, ``default`` for the demo.
"""
from dataclasses import asdict, dataclass
from typing import Dict, Tuple, Union


@dataclass(frozen=True)
class PretrainSettings:
    """Tiny CLIP sizes (widths multiples of 64) and the two training stages of ``pretrain.pretrain_clip``:
    the image tower's warm start (``warm_start_*``) and the contrastive image-text stage (``contrastive_*``)."""

    embed_dim: int = 64
    vision_width: int = 64
    vision_layers: int = 2
    vision_patch_size: int = 8
    transformer_width: int = 64
    transformer_layers: int = 2
    warm_start_steps: int = 6000
    warm_start_batch_size: int = 64
    contrastive_steps: int = 400
    contrastive_batch_size: int = 256
    lr: float = 2e-3
    image_lr_scale: float = 0.3  # image tower's learning rate in the contrastive stage, relative to ``lr``
    weight_decay: float = 0.1
    warmup_steps: int = 30

    def __post_init__(self) -> None:
        if min(self.warm_start_steps, self.contrastive_steps, self.warm_start_batch_size, self.contrastive_batch_size) < 1:
            raise ValueError(f"PretrainSettings: steps and batch sizes must be positive, got {self}")

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class WorldSize:
    """``images_per_class``: (train, val, test) of each downstream dataset; ``shifted_test_per_class``: test
    images per class of the test-only shifted datasets; ``corpus_images``: image-text pairs (a multiple of
    ``world.CORPUS_GROUP_SIZE``), spread evenly over the styles."""

    name: str
    images_per_class: Tuple[int, int, int]
    shifted_test_per_class: int
    corpus_images: int
    pretrain: PretrainSettings


WORLD_SIZES: Dict[str, WorldSize] = {
    size.name: size
    for size in (
        WorldSize(
            "tiny", (8, 2, 6), 6, 1000,
            PretrainSettings(warm_start_steps=500, contrastive_steps=100, contrastive_batch_size=128),
        ),
        WorldSize("small", (16, 4, 20), 20, 8000, PretrainSettings(warm_start_steps=3000, contrastive_steps=250)),
        WorldSize("default", (32, 8, 40), 40, 20000, PretrainSettings()),
    )
}


def resolve_world_size(size: Union[str, WorldSize]) -> WorldSize:
    """``size`` itself, or the preset it names (an error listing the presets for an unknown name)."""
    if isinstance(size, WorldSize):
        return size
    if size not in WORLD_SIZES:
        raise ValueError(f"unknown toy world size {size!r}; expected one of {sorted(WORLD_SIZES)}")
    return WORLD_SIZES[size]
