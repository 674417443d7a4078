"""Templated captions of varied wording for a ``Scene``.

Each attribute is mentioned only sometimes, synonyms and word orders vary, and the shape noun is now and
then replaced by a generic "shape"/"object", so captions are partial descriptions like real alt-text and
every word that a toy class name uses ("circle", "red", "striped", "shape", "three") appears on its own.
"""
from typing import List

import numpy as np

from datasets.toy_world.scenes import ObjectGroup, Scene
from datasets.toy_world.vocabulary import (
    BACKGROUND_SENTENCES,
    COUNT_WORDS,
    GENERIC_NOUNS,
    POSITIONS,
    SHAPE_PLURALS,
    SIZE_SYNONYMS,
    STYLE_TEMPLATES,
)

MENTION_PROB = {"size": 0.5, "colour": 0.85, "texture": 0.7, "plain": 0.2, "position": 0.5}
GENERIC_NOUN_PROB = 0.2
EXTRA_SENTENCE_PROB = 0.3


def _choice(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _noun(group: ObjectGroup, rng: np.random.Generator) -> str:
    noun = _choice(rng, GENERIC_NOUNS) if rng.random() < GENERIC_NOUN_PROB else group.shape
    if group.count == 1:
        return noun
    return SHAPE_PLURALS.get(noun, noun + "s")


def _with_article(phrase: str, rng: np.random.Generator) -> str:
    if rng.random() < 0.2:
        return "one " + phrase
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def group_phrase(group: ObjectGroup, rng: np.random.Generator) -> str:
    """E.g. "two small red striped circles", "a star with a dotted pattern", "three shapes"."""
    noun = _noun(group, rng)
    adjectives: List[str] = []
    if rng.random() < MENTION_PROB["size"]:
        adjectives.append(_choice(rng, SIZE_SYNONYMS[group.size]))
    if rng.random() < MENTION_PROB["colour"]:
        adjectives.append(group.colour)
    texture_words = ""
    if group.texture != "plain" and rng.random() < MENTION_PROB["texture"]:
        if rng.random() < 0.3:
            texture_words = f" with a {group.texture} pattern"
        else:
            adjectives.append(group.texture)
    elif group.texture == "plain" and rng.random() < MENTION_PROB["plain"]:
        adjectives.append("plain")
    phrase = " ".join(adjectives + [noun]) + texture_words
    if group.count == 1:
        return _with_article(phrase, rng)
    return f"{COUNT_WORDS[group.count]} {phrase}"


def caption_scene(scene: Scene, rng: np.random.Generator) -> str:
    """One caption for ``scene`` in its style's wording."""
    objects = " and ".join(group_phrase(group, rng) for group in scene.groups)
    if scene.position is not None and rng.random() < MENTION_PROB["position"]:
        objects = f"{objects} {POSITIONS[scene.position]}"
    caption = _choice(rng, STYLE_TEMPLATES[scene.style]).format(objects)
    if rng.random() < EXTRA_SENTENCE_PROB:
        if rng.random() < 0.5:
            total = scene.num_objects
            extra = "there is one object." if total == 1 else f"there are {COUNT_WORDS[total]} objects."
        else:
            extra = _choice(rng, BACKGROUND_SENTENCES[scene.style])
        caption = f"{caption}. {extra}"
    return caption
