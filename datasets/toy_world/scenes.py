"""What a toy image shows: groups of identical objects in one style, and how to draw one at random.

A ``Scene`` is the symbolic content of an image; ``render.render_scene`` draws it and
``captions.caption_scene`` describes it. ``sample_scene`` draws the unspecified attributes from a
numpy ``Generator`` so that a dataset fixes only what its label means (e.g. the shape) and lets the rest vary.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from datasets.toy_world.vocabulary import COLOURS, MAX_OBJECTS, POSITIONS, SHAPES, SIZES, STYLES, TEXTURES


@dataclass(frozen=True)
class ObjectGroup:
    """``count`` identical objects."""

    shape: str
    colour: str
    texture: str
    size: str
    count: int = 1


@dataclass(frozen=True)
class Scene:
    """Object groups (at most ``MAX_OBJECTS`` objects in all) drawn in one style.

    ``position`` places a lone object ("left", ...); scenes with several objects use a 2x2 layout.
    """

    groups: Tuple[ObjectGroup, ...]
    style: str
    position: Optional[str] = None

    @property
    def num_objects(self) -> int:
        return sum(group.count for group in self.groups)


def _pick(rng: np.random.Generator, choices, fixed=None):
    return fixed if fixed is not None else choices[int(rng.integers(len(choices)))]


def sample_group(
    rng: np.random.Generator,
    shape: Optional[str] = None,
    colour: Optional[str] = None,
    texture: Optional[str] = None,
    size: Optional[str] = None,
    count: int = 1,
) -> ObjectGroup:
    """An object group with the given attributes; the others drawn uniformly (plain texture favoured 2:1)."""
    textures = TEXTURES + ("plain",) * 2
    return ObjectGroup(
        shape=_pick(rng, SHAPES, shape),
        colour=_pick(rng, tuple(COLOURS), colour),
        texture=_pick(rng, textures, texture),
        size=_pick(rng, SIZES, size),
        count=count,
    )


def sample_scene(
    rng: np.random.Generator,
    style: str,
    shape: Optional[str] = None,
    colour: Optional[str] = None,
    texture: Optional[str] = None,
    size: Optional[str] = None,
    count: int = 1,
) -> Scene:
    """A one-group scene: ``count`` identical objects, unspecified attributes random, a lone object placed."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    if not 1 <= count <= MAX_OBJECTS:
        raise ValueError(f"count must be in 1..{MAX_OBJECTS}, got {count}")
    group = sample_group(rng, shape=shape, colour=colour, texture=texture, size=size, count=count)
    position = _pick(rng, tuple(POSITIONS)) if count == 1 else None
    return Scene(groups=(group,), style=style, position=position)


CORPUS_COUNT_WEIGHTS = (0.4, 0.2, 0.2, 0.2)  # lone objects (as in most downstream images) favoured


def sample_corpus_scene(rng: np.random.Generator, style: str, two_group_prob: float = 0.25) -> Scene:
    """A free scene for the image-text corpus: one group of 1-4 objects, or two different groups."""
    if rng.random() < two_group_prob:
        first_count = int(rng.integers(1, MAX_OBJECTS))
        second_count = int(rng.integers(1, MAX_OBJECTS - first_count + 1))
        first = sample_group(rng, count=first_count)
        second = sample_group(rng, count=second_count)
        while (second.shape, second.colour) == (first.shape, first.colour):
            second = sample_group(rng, count=second_count)
        return Scene(groups=(first, second), style=style)
    return sample_scene(rng, style, count=int(rng.choice(MAX_OBJECTS, p=CORPUS_COUNT_WEIGHTS)) + 1)
