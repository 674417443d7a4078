"""Hand-crafted prompt templates for zero-shot CLIP (CoOp's choices).

One template per dataset as in CoOp's ``CUSTOM_TEMPLATES`` (from the CLIP paper's per-dataset
prompt engineering), "a photo of a {}." for datasets it does not list (e.g. the toy world), and
the seven-template ensemble CoOp's ZeroshotCLIP2 uses (``IMAGENET_TEMPLATES_SELECT``, plus the
dataset's own template outside the ImageNet family).
"""
from typing import Dict, List

DEFAULT_TEMPLATE = "a photo of a {}."

CUSTOM_TEMPLATES: Dict[str, str] = {
    "OxfordPets": "a photo of a {}, a type of pet.",
    "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "DescribableTextures": "{} texture.",
    "EuroSAT": "a centered satellite photo of {}.",
    "StanfordCars": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.",
    "SUN397": "a photo of a {}.",
    "Caltech101": "a photo of a {}.",
    "UCF101": "a photo of a person doing {}.",
    "ImageNet": "a photo of a {}.",
    "ImageNetSketch": "a photo of a {}.",
    "ImageNetV2": "a photo of a {}.",
    "ImageNetA": "a photo of a {}.",
    "ImageNetR": "a photo of a {}.",
}

IMAGENET_TEMPLATES_SELECT: List[str] = [
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
]


def dataset_template(dataset_name: str) -> str:
    """The single zero-shot template of ``dataset_name`` (default "a photo of a {}.")."""
    return CUSTOM_TEMPLATES.get(dataset_name, DEFAULT_TEMPLATE)


def ensemble_templates(dataset_name: str) -> List[str]:
    """The prompt-ensemble templates: the selected ImageNet ones, plus the dataset's own
    template for datasets outside the ImageNet family."""
    templates = list(IMAGENET_TEMPLATES_SELECT)
    if not dataset_name.startswith("ImageNet"):
        templates.append(dataset_template(dataset_name))
    return templates


def fill_template(template: str, classnames: List[str]) -> List[str]:
    """``template`` filled with each class name (underscores read as spaces)."""
    return [template.format(name.replace("_", " ")) for name in classnames]
