"""The toy world: a procedurally drawn vision-language world on which the whole toolbox runs on a CPU.

Objects (shape, colour, texture, size, count, position) are drawn in five styles (the domains) and captioned
with varied templates. ``build_world`` writes downstream datasets in CoOp's layout (``specs.py`` lists them
and their protocols) and an image-text corpus for meta-training; ``ensure_toy_clip`` pretrains (or reuses)
a tiny CLIP on that corpus. The modules, one job each:

- ``vocabulary``: the words; ``scenes``: what an image shows; ``render``: drawing; ``captions``: wording;
- ``specs``: the downstream datasets; ``presets``: world sizes and pretraining settings;
- ``world``: writing the world to disk; ``toy_datasets``: the Dassl dataset classes (registered on import);
- ``pretrain``: contrastive pretraining; ``zeroshot``: zero-shot accuracy; ``toy_clip``: the cached CLIP.

Importing the package registers the datasets without loading the pretraining code; ``ensure_toy_clip``,
``evaluate_zero_shot`` and ``read_toy_clip_record`` load ``toy_clip`` on first use.
"""
from datasets.toy_world import toy_datasets  # noqa: F401  (registers the datasets)
from datasets.toy_world.presets import WORLD_SIZES, PretrainSettings, WorldSize
from datasets.toy_world.specs import DATASET_SPECS, HELDOUT_SPECS, ToyDatasetSpec
from datasets.toy_world.world import WorldInfo, build_heldout_datasets, build_world

LAZY_FROM_TOY_CLIP = ("ensure_toy_clip", "evaluate_zero_shot", "read_toy_clip_record")

__all__ = [
    "DATASET_SPECS",
    "HELDOUT_SPECS",
    "PretrainSettings",
    "ToyDatasetSpec",
    "WORLD_SIZES",
    "WorldInfo",
    "WorldSize",
    "build_heldout_datasets",
    "build_world",
    *LAZY_FROM_TOY_CLIP,
]


def __getattr__(name: str):
    if name in LAZY_FROM_TOY_CLIP:
        from datasets.toy_world import toy_clip

        return getattr(toy_clip, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
