"""The toy world's words: the attributes an object can have and the styles (domains) a scene is drawn in.

Every word here is plain English that the tiny CLIP meets in the corpus captions, so a class name built
from them ("red circle", "striped shape", "three shapes") means something to it zero-shot.
"""
from typing import Dict, Tuple

SHAPES: Tuple[str, ...] = (
    "circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon", "heart", "crescent",
)
SHAPE_PLURALS: Dict[str, str] = {shape: shape + ("es" if shape.endswith("s") else "s") for shape in SHAPES}

# RGB in [0, 1]; saturated enough to stay apart from the muted backgrounds.
COLOURS: Dict[str, Tuple[float, float, float]] = {
    "red": (0.86, 0.12, 0.12),
    "orange": (0.96, 0.55, 0.08),
    "yellow": (0.95, 0.88, 0.12),
    "green": (0.13, 0.66, 0.22),
    "cyan": (0.12, 0.80, 0.86),
    "blue": (0.13, 0.25, 0.88),
    "purple": (0.55, 0.18, 0.75),
    "pink": (0.97, 0.47, 0.76),
}
TEXTURES: Tuple[str, ...] = ("plain", "striped", "dotted", "checkered", "wavy", "speckled")
SIZES: Tuple[str, ...] = ("small", "big")
SIZE_SYNONYMS: Dict[str, Tuple[str, ...]] = {"small": ("small", "small", "tiny"), "big": ("big", "big", "large")}
COUNT_WORDS: Dict[int, str] = {1: "one", 2: "two", 3: "three", 4: "four"}
MAX_OBJECTS = 4
POSITIONS: Dict[str, str] = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}
GENERIC_NOUNS: Tuple[str, ...] = ("shape", "object")

# Domains: each style is drawn differently (see render.py) and captioned with its own wording.
STYLES: Tuple[str, ...] = ("photo", "sketch", "noisy", "faded", "patterned")
STYLE_TEMPLATES: Dict[str, Tuple[str, ...]] = {
    "photo": ("a photo of {}", "a picture of {}", "an image of {}", "a photo showing {}", "{}"),
    "sketch": ("a sketch of {}", "a drawing of {}", "a pencil sketch of {}", "a line drawing of {}"),
    "noisy": ("a noisy photo of {}", "a grainy picture of {}", "a photo of {}", "a noisy image of {}"),
    "faded": ("a faded photo of {}", "a low contrast photo of {}", "a dim picture of {}", "a photo of {}"),
    "patterned": (
        "a photo of {} on a patterned background",
        "{} in front of a busy pattern",
        "a picture of {} on a patterned background",
        "a photo of {}",
    ),
}
BACKGROUND_SENTENCES: Dict[str, Tuple[str, ...]] = {
    "photo": ("the background is smooth.", "the background is plain."),
    "sketch": ("it is drawn on white paper.", "the lines are thin."),
    "noisy": ("the image is noisy.", "the picture is grainy."),
    "faded": ("the colors are faded.", "the contrast is low."),
    "patterned": ("the background is patterned.", "the background is busy."),
}
