"""The toy world's downstream datasets: their class names and what an image of each class shows.

Four datasets with their own class sets, all in the ``photo`` style (the toy ImageNet, so to speak):

- ``ToyShapes`` (10 classes): the shape ("circle", ...); colour, texture, size and position vary.
- ``ToyColorShapes`` (20 classes): colour x shape ("red circle", ...) over 5 colours x 4 shapes. The label
  order puts the pairs with an even (colour index + shape index) first, so the base half (CoCoOp's first
  ceil(n/2) labels) and the new half each hold every colour and shape, and new classes are new pairings
  of known words.
- ``ToyTextures`` (6 classes): the texture ("striped shape", ...) of one big object.
- ``ToyCounting`` (4 classes): how many objects ("one shape" ... "four shapes"), half of the images with
  two kinds of objects.

Shifted-domain, test-only versions of ``ToyShapes`` (the DG protocol, like ImageNet -> Sketch/V2/A/R):
``ToyShapesSketch``, ``ToyShapesNoisy``, ``ToyShapesFaded``, ``ToyShapesPatterned``: the same 10 classes
drawn in the other four styles. For the cross-dataset protocol, train on ``ToyColorShapes`` (the broadest
class set) and test on the other three.

Held-out class sets (``HELDOUT_SPECS``), drawn with their own generator seed by
``world.build_heldout_datasets`` and never used to choose any setting (README): they label what no dataset
above labels, or labels only jointly:

- ``ToySizeShapes`` (12 classes): size x shape ("small circle", "big star", ...) over 2 sizes x 6 shapes,
  ordered like ``ToyColorShapes`` so that base and new classes are new pairings of known words;
- ``ToyPositions`` (5 classes): where a lone object is ("shape on the left", ..., "shape in the center");
- ``ToyColors`` (8 classes): the colour alone ("red shape", ...), over all 8 colours (3 of them never in a
  class name above).
"""
from dataclasses import dataclass, replace
from typing import Callable, Dict, Tuple

import numpy as np

from datasets.toy_world.scenes import Scene, sample_scene, sample_two_group_scene
from datasets.toy_world.vocabulary import COLOURS, COUNT_WORDS, POSITIONS, SHAPES, SIZES, TEXTURES

DrawScene = Callable[[int, np.random.Generator, str], Scene]


@dataclass(frozen=True)
class ToyDatasetSpec:
    """One downstream dataset: ``dataset_dir`` under the data root, class names by label, and ``draw``
    (label, rng, style) -> the scene of one image of that class."""

    name: str
    dataset_dir: str
    classnames: Tuple[str, ...]
    draw: DrawScene
    style: str = "photo"
    test_only: bool = False

    @property
    def split_filename(self) -> str:
        return f"split_zhou_{self.name}.json"

    def class_folder(self, label: int) -> str:
        return self.classnames[label].replace(" ", "_")


SHIFTED_STYLES = ("sketch", "noisy", "faded", "patterned")
MIXED_COUNT_PROB = 0.5  # counting images with two kinds of objects
COLOR_SHAPE_COLOURS = ("red", "green", "blue", "yellow", "purple")
COLOR_SHAPE_SHAPES = ("circle", "square", "triangle", "star")


def alternating_pairs(firsts: Tuple[str, ...], seconds: Tuple[str, ...]) -> Tuple[Tuple[str, str], ...]:
    """Every (first, second) pair, those with an even index sum first: the first half and the second half
    (CoCoOp's base and new classes) each hold every word, so new classes are new pairings of known words."""
    def index_key(pair: Tuple[str, str]) -> Tuple[int, int, int]:
        i, j = firsts.index(pair[0]), seconds.index(pair[1])
        return (i + j) % 2, i, j

    return tuple(sorted(((a, b) for a in firsts for b in seconds), key=index_key))


COLOR_SHAPE_PAIRS = alternating_pairs(COLOR_SHAPE_COLOURS, COLOR_SHAPE_SHAPES)
SIZE_SHAPE_SHAPES = ("circle", "square", "triangle", "star", "cross", "heart")
SIZE_SHAPE_PAIRS = alternating_pairs(SIZES, SIZE_SHAPE_SHAPES)


def _draw_shape(label: int, rng: np.random.Generator, style: str) -> Scene:
    return sample_scene(rng, style, shape=SHAPES[label])


def _draw_colour_shape(label: int, rng: np.random.Generator, style: str) -> Scene:
    colour, shape = COLOR_SHAPE_PAIRS[label]
    return sample_scene(rng, style, shape=shape, colour=colour)


def _draw_texture(label: int, rng: np.random.Generator, style: str) -> Scene:
    return sample_scene(rng, style, texture=TEXTURES[label], size="big")


def _draw_count(label: int, rng: np.random.Generator, style: str) -> Scene:
    count = label + 1
    if count > 1 and rng.random() < MIXED_COUNT_PROB:
        return sample_two_group_scene(rng, style, count)
    return sample_scene(rng, style, count=count)


def _draw_size_shape(label: int, rng: np.random.Generator, style: str) -> Scene:
    size, shape = SIZE_SHAPE_PAIRS[label]
    return sample_scene(rng, style, shape=shape, size=size)


def _draw_position(label: int, rng: np.random.Generator, style: str) -> Scene:
    return replace(sample_scene(rng, style), position=tuple(POSITIONS)[label])


def _draw_colour(label: int, rng: np.random.Generator, style: str) -> Scene:
    return sample_scene(rng, style, colour=tuple(COLOURS)[label])


def _all_specs() -> Dict[str, ToyDatasetSpec]:
    specs = [
        ToyDatasetSpec("ToyShapes", "toy_shapes", SHAPES, _draw_shape),
        ToyDatasetSpec(
            "ToyColorShapes",
            "toy_color_shapes",
            tuple(f"{colour} {shape}" for colour, shape in COLOR_SHAPE_PAIRS),
            _draw_colour_shape,
        ),
        ToyDatasetSpec("ToyTextures", "toy_textures", tuple(f"{texture} shape" for texture in TEXTURES), _draw_texture),
        ToyDatasetSpec(
            "ToyCounting",
            "toy_counting",
            tuple(f"{COUNT_WORDS[n]} shape" + ("s" if n > 1 else "") for n in sorted(COUNT_WORDS)),
            _draw_count,
        ),
    ]
    specs += [
        ToyDatasetSpec(
            f"ToyShapes{style.capitalize()}", f"toy_shapes_{style}", SHAPES, _draw_shape, style, True
        )
        for style in SHIFTED_STYLES
    ]
    return {spec.name: spec for spec in specs}


DATASET_SPECS: Dict[str, ToyDatasetSpec] = _all_specs()
HELDOUT_SPECS: Dict[str, ToyDatasetSpec] = {
    spec.name: spec
    for spec in (
        ToyDatasetSpec("ToySizeShapes", "toy_size_shapes",
                       tuple(f"{size} {shape}" for size, shape in SIZE_SHAPE_PAIRS), _draw_size_shape),
        ToyDatasetSpec("ToyPositions", "toy_positions", tuple(f"shape {words}" for words in POSITIONS.values()),
                       _draw_position),
        ToyDatasetSpec("ToyColors", "toy_colors", tuple(f"{colour} shape" for colour in COLOURS), _draw_colour),
    )
}
