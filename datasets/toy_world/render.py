"""Draw a ``Scene`` into an RGB image with numpy: shapes as implicit masks, textures as periodic masks.

Each image is drawn on a canvas ``SUPERSAMPLE`` times larger than the output and averaged down (anti-aliasing).
The five styles are the world's domains:

- ``photo``: gradient background, shaded objects with a drop shadow;
- ``sketch``: coloured-pencil outlines (and texture lines) on paper, no fill;
- ``noisy``: the photo rendering plus strong Gaussian pixel noise;
- ``faded``: the photo rendering with its contrast cut to a fifth to a third, pulled toward a grey;
- ``patterned``: flat objects on a busy two-colour pattern (the background shares the objects' textures).

All randomness comes from the ``rng`` passed in, so one generator state gives one image, byte for byte.
"""
from typing import Callable, Dict, List, Tuple

import numpy as np

from datasets.toy_world.scenes import ObjectGroup, Scene
from datasets.toy_world.vocabulary import COLOURS

SUPERSAMPLE = 2
TEXTURE_PERIOD = (0.12, 0.16)  # canvas fractions: ~4-5 output pixels at 32 px
POSITION_ANCHORS: Dict[str, Tuple[float, float]] = {
    "left": (0.3, 0.5),
    "right": (0.7, 0.5),
    "top": (0.5, 0.3),
    "bottom": (0.5, 0.7),
    "center": (0.5, 0.5),
}
GRID_CELLS = ((0.27, 0.27), (0.73, 0.27), (0.27, 0.73), (0.73, 0.73))
RADIUS_RANGES = {  # (lone object, one of several)
    "big": ((0.23, 0.28), (0.17, 0.21)),
    "small": ((0.15, 0.19), (0.11, 0.14)),
}

Array = np.ndarray


def _polygon(sides: int, first_vertex: float, apothem_scale: float = 1.0) -> Callable[[Array, Array], Array]:
    normals = first_vertex + np.pi / sides + 2 * np.pi * np.arange(sides) / sides
    apothem = np.cos(np.pi / sides) * apothem_scale

    def inside(u: Array, v: Array) -> Array:
        projections = u[..., None] * np.cos(normals) + v[..., None] * np.sin(normals)
        return projections.max(-1) < apothem

    return inside


def _star(u: Array, v: Array) -> Array:
    phase = ((np.arctan2(v, u) + np.pi / 2) / (2 * np.pi / 5)) % 1.0
    tip_closeness = np.abs(phase - 0.5) * 2
    return np.hypot(u, v) < 0.42 + 0.58 * tip_closeness


def _heart(u: Array, v: Array) -> Array:
    x, y = 1.15 * u, 0.15 - 1.15 * v
    return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 < 0


SHAPE_MASKS: Dict[str, Callable[[Array, Array], Array]] = {
    "circle": lambda u, v: np.hypot(u, v) < 0.92,
    "square": _polygon(4, np.pi / 4, 1.05),
    "triangle": _polygon(3, -np.pi / 2, 1.1),
    "star": _star,
    "cross": lambda u, v: ((np.abs(u) < 0.32) & (np.abs(v) < 0.95)) | ((np.abs(v) < 0.32) & (np.abs(u) < 0.95)),
    "ring": lambda u, v: (np.hypot(u, v) > 0.52) & (np.hypot(u, v) < 0.95),
    "diamond": _polygon(4, 0.0),
    "hexagon": _polygon(6, 0.0, 0.98),
    "heart": _heart,
    "crescent": lambda u, v: (np.hypot(u, v) < 0.92) & (np.hypot(u - 0.42, v + 0.12) > 0.72),
}


def _texture_mask(texture: str, x: Array, y: Array, rng: np.random.Generator, resolution: int,
                  window: Tuple[slice, slice] = (slice(None), slice(None))) -> Array:
    """Pixels of the texture's second colour at canvas coordinates x, y in [0, 1] (``window`` of the canvas)."""
    if texture == "plain":
        return np.zeros(x.shape, dtype=bool)
    if texture == "speckled":
        cells = rng.random((resolution, resolution)) < 0.35
        return np.kron(cells, np.ones((SUPERSAMPLE, SUPERSAMPLE), dtype=bool))[window]
    period = rng.uniform(*TEXTURE_PERIOD)
    angle = rng.integers(4) * np.pi / 4 + rng.uniform(-0.15, 0.15)
    along = (x * np.cos(angle) + y * np.sin(angle)) / period + rng.random()
    across = (-x * np.sin(angle) + y * np.cos(angle)) / period + rng.random()
    if texture == "striped":
        return along % 1.0 < 0.5
    if texture == "wavy":
        return (along + 0.3 * np.sin(2 * np.pi * across / 1.6)) % 1.0 < 0.5
    if texture == "checkered":
        return (np.floor(along) + np.floor(across)) % 2 == 0
    if texture == "dotted":
        return np.hypot(along % 1.0 - 0.5, across % 1.0 - 0.5) < 0.28
    raise ValueError(f"unknown texture {texture!r}")


def _contrast_colour(colour: Array) -> Array:
    """The second colour of a texture: lighter for a dark colour, darker for a light one."""
    luminance = float(colour @ np.array([0.299, 0.587, 0.114]))
    return 0.35 * colour + 0.65 * (np.ones(3) if luminance < 0.5 else np.zeros(3))


def _muted_colour(rng: np.random.Generator, value: Tuple[float, float]) -> Array:
    grey = rng.uniform(*value)
    return np.clip(grey + rng.uniform(-0.12, 0.12, size=3), 0.0, 1.0)


def _erode(mask: Array, steps: int) -> Array:
    for _ in range(steps):
        padded = np.pad(mask, 1, constant_values=False)
        mask = (
            padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        )
    return mask


def _layout(scene: Scene, rng: np.random.Generator) -> List[Tuple[ObjectGroup, float, float, float, float]]:
    """(group, centre x, centre y, radius, rotation) for every object, in drawing order."""
    objects = [group for group in scene.groups for _ in range(group.count)]
    lone = len(objects) == 1
    if lone:
        centres = [POSITION_ANCHORS[scene.position or "center"]]
    else:
        centres = [GRID_CELLS[cell] for cell in rng.permutation(len(GRID_CELLS))[: len(objects)]]
    placed = []
    for group, (cx, cy) in zip(objects, centres):
        radius = rng.uniform(*RADIUS_RANGES[group.size][0 if lone else 1])
        jitter = rng.uniform(-0.04, 0.04, size=2)
        placed.append((group, cx + jitter[0], cy + jitter[1], radius, rng.uniform(-0.3, 0.3)))
    return placed


def _background(style: str, x: Array, y: Array, rng: np.random.Generator, resolution: int) -> Array:
    if style == "sketch":
        paper = rng.uniform(0.9, 1.0) - np.array([0.0, 0.01, 0.04]) * rng.random()
        return np.broadcast_to(paper, x.shape + (3,)).copy()
    first, second = _muted_colour(rng, (0.25, 0.9)), _muted_colour(rng, (0.25, 0.9))
    if style == "patterned":
        pattern = _texture_mask(("striped", "checkered", "dotted", "wavy")[rng.integers(4)], x, y, rng, resolution)
        return np.where(pattern[..., None], first, second)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.clip((x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle) + 0.5, 0.0, 1.0)[..., None]
    return (1 - ramp) * first + ramp * second


def _window(centre: float, radius: float, size: int, extra: int) -> slice:
    """Canvas rows (or columns) that an object of this centre and radius can touch, plus ``extra``."""
    low = int(np.floor((centre - 1.1 * radius) * size))
    high = int(np.ceil((centre + 1.1 * radius) * size)) + extra
    return slice(max(low, 0), min(high, size))


def _draw_object(canvas: Array, style: str, group: ObjectGroup, centre: Tuple[float, float], radius: float,
                 rotation: float, x: Array, y: Array, rng: np.random.Generator, resolution: int) -> None:
    size = x.shape[0]
    shadow_shift = int(round(0.03 * size)) if style not in ("sketch", "patterned") else 0
    window = (_window(centre[1], radius, size, shadow_shift), _window(centre[0], radius, size, shadow_shift))
    x, y, region = x[window], y[window], canvas[window]
    dx, dy = (x - centre[0]) / radius, (y - centre[1]) / radius
    u = dx * np.cos(rotation) + dy * np.sin(rotation)
    v = -dx * np.sin(rotation) + dy * np.cos(rotation)
    mask = SHAPE_MASKS[group.shape](u, v)
    colour = np.clip(np.array(COLOURS[group.colour]) + rng.uniform(-0.05, 0.05, size=3), 0.0, 1.0)
    pattern = _texture_mask(group.texture, x, y, rng, resolution, window)
    fill = np.where(pattern[..., None], _contrast_colour(colour), colour)
    if style == "sketch":
        outline = mask & ~_erode(mask, SUPERSAMPLE)
        region[mask & pattern] = 0.55 * region[mask & pattern] + 0.45 * (0.7 * colour)
        region[outline] = 0.7 * colour
        return
    if shadow_shift:
        shadow = np.zeros_like(mask)
        shadow[shadow_shift:, shadow_shift:] = mask[:-shadow_shift, :-shadow_shift]
        region[shadow & ~mask] *= 0.6
    if style != "patterned":
        shading = 1.12 - 0.28 * np.clip((u + v) * 0.35 + 0.5, 0.0, 1.0)
        fill = fill * shading[..., None]
    region[mask] = np.clip(fill[mask], 0.0, 1.0)


def render_scene(scene: Scene, rng: np.random.Generator, resolution: int = 32) -> Array:
    """An ``resolution x resolution x 3`` uint8 image of ``scene``."""
    size = resolution * SUPERSAMPLE
    coords = (np.arange(size) + 0.5) / size
    x, y = np.meshgrid(coords, coords)
    canvas = _background(scene.style, x, y, rng, resolution)
    for group, cx, cy, radius, rotation in _layout(scene, rng):
        _draw_object(canvas, scene.style, group, (cx, cy), radius, rotation, x, y, rng, resolution)
    image = canvas.reshape(resolution, SUPERSAMPLE, resolution, SUPERSAMPLE, 3).mean(axis=(1, 3))
    if scene.style == "noisy":
        image = image + rng.normal(0.0, rng.uniform(0.1, 0.2), size=image.shape)
    elif scene.style == "faded":
        contrast = rng.uniform(0.2, 0.35)
        image = rng.uniform(0.4, 0.7) * (1 - contrast) + contrast * image
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
