"""What a toy image shows: groups of identical objects in one style, and how to draw one at random.

A ``Scene`` is the symbolic content of an image; ``render.render_scene`` draws it and
``captions.caption_scene`` describes it. The samplers draw the unspecified attributes from a numpy
``Generator``, so a dataset fixes only what its label means (e.g. the shape) and lets the rest vary.
"""
from dataclasses import dataclass, replace
from typing import Dict, Optional, Tuple

import numpy as np

from datasets.toy_world.vocabulary import COLOURS, MAX_OBJECTS, POSITIONS, SHAPES, SIZES, STYLES, TEXTURES

# The attributes a scene is labelled with: its objects' shape, colour and texture (MIXED where its objects
# differ), the object count and the style.
MIXED = "mixed"
ATTRIBUTE_VALUES: Dict[str, Tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": tuple(COLOURS),
    "texture": TEXTURES,
    "count": tuple(str(count) for count in range(1, MAX_OBJECTS + 1)),
    "style": STYLES,
}
CORPUS_COUNT_WEIGHTS = (0.4, 0.2, 0.2, 0.2)  # lone objects (as in most downstream images) favoured
TWO_GROUP_PROB = 0.25
VARIED_ATTRIBUTE_WEIGHTS = {"shape": 0.5, "texture": 0.2, "colour": 0.15, "count": 0.15}


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

    def attributes(self) -> Dict[str, str]:
        """The scene's value of every attribute of ``ATTRIBUTE_VALUES`` (``MIXED`` where objects differ)."""

        def common(values) -> str:
            return values[0] if len(set(values)) == 1 else MIXED

        return {
            "shape": common([group.shape for group in self.groups]),
            "colour": common([group.colour for group in self.groups]),
            "texture": common([group.texture for group in self.groups]),
            "count": str(self.num_objects),
            "style": self.style,
        }


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
    """An object group with the given attributes; the others drawn uniformly (plain texture favoured 3:1)."""
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


def sample_two_group_scene(rng: np.random.Generator, style: str, total: int) -> Scene:
    """``total`` (2..MAX_OBJECTS) objects in two groups that differ in shape or colour."""
    first_count = int(rng.integers(1, total))
    first = sample_group(rng, count=first_count)
    second = sample_group(rng, count=total - first_count)
    while (second.shape, second.colour) == (first.shape, first.colour):
        second = sample_group(rng, count=total - first_count)
    return Scene(groups=(first, second), style=style)


def sample_corpus_scene(rng: np.random.Generator, style: str) -> Scene:
    """A free scene for the image-text corpus: one group of 1-4 objects, or two different groups."""
    if rng.random() < TWO_GROUP_PROB:
        return sample_two_group_scene(rng, style, int(rng.integers(2, MAX_OBJECTS + 1)))
    return sample_scene(rng, style, count=int(rng.choice(MAX_OBJECTS, p=CORPUS_COUNT_WEIGHTS)) + 1)


def sample_contrast_group(rng: np.random.Generator, style: str, group_size: int) -> Tuple[Scene, ...]:
    """``group_size`` corpus scenes equal but for one attribute of their first object group (mostly the shape).

    Seen in one batch, they are hard negatives for each other: a contrastive model can only tell their
    captions apart by that attribute, which keeps it from matching images by colour and layout alone.
    """
    base = sample_corpus_scene(rng, style)
    names = tuple(VARIED_ATTRIBUTE_WEIGHTS)
    attribute = names[int(rng.choice(len(names), p=tuple(VARIED_ATTRIBUTE_WEIGHTS.values())))]
    if attribute == "count" and len(base.groups) > 1:
        attribute = "shape"
    values = {"shape": SHAPES, "texture": TEXTURES, "colour": tuple(COLOURS), "count": range(1, MAX_OBJECTS + 1)}
    choices = list(values[attribute])
    if group_size > len(choices):
        raise ValueError(f"a contrast group of {group_size} needs at most {len(choices)} {attribute} values")
    scenes = []
    for index in rng.choice(len(choices), size=group_size, replace=False):
        first = replace(base.groups[0], **{attribute: choices[int(index)]})
        position = base.position
        if attribute == "count":
            position = _pick(rng, tuple(POSITIONS)) if first.count == 1 else None
        scenes.append(Scene(groups=(first,) + base.groups[1:], style=style, position=position))
    return tuple(scenes)
