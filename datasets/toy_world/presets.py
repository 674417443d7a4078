"""Size presets of the toy world: how many images it holds and how long its CLIP is pretrained.

``tiny`` builds in seconds for CI tests, ``small`` for quick looks, ``default`` for the demo.
"""
from dataclasses import asdict, dataclass
from typing import Dict, Tuple, Union


@dataclass(frozen=True)
class PretrainSettings:
    """Tiny CLIP sizes (widths multiples of 64) and the optimisation schedule."""

    embed_dim: int = 64
    vision_width: int = 128
    vision_layers: int = 3
    vision_patch_size: int = 8
    transformer_width: int = 64
    transformer_layers: int = 2
    steps: int = 600
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class WorldSize:
    """``images_per_class``: (train, val, test) of each downstream dataset; ``shifted_test_per_class``: test
    images per class of the test-only shifted datasets; ``corpus_images``: image-text pairs, spread evenly
    over the styles."""

    name: str
    images_per_class: Tuple[int, int, int]
    shifted_test_per_class: int
    corpus_images: int
    pretrain: PretrainSettings


WORLD_SIZES: Dict[str, WorldSize] = {
    size.name: size
    for size in (
        WorldSize("tiny", (8, 2, 6), 6, 1500, PretrainSettings(vision_width=64, vision_layers=2, steps=60, batch_size=128)),
        WorldSize("small", (16, 4, 20), 20, 6000, PretrainSettings(steps=300)),
        WorldSize("default", (32, 8, 40), 40, 20000, PretrainSettings(steps=600)),
    )
}


def resolve_world_size(size: Union[str, WorldSize]) -> WorldSize:
    """``size`` itself, or the preset it names (an error listing the presets for an unknown name)."""
    if isinstance(size, WorldSize):
        return size
    if size not in WORLD_SIZES:
        raise ValueError(f"unknown toy world size {size!r}; expected one of {sorted(WORLD_SIZES)}")
    return WORLD_SIZES[size]
