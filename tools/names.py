"""Dataset names: the config-file names the scripts use, the names tables print, and the protocol lists.

The scripts name a dataset by its config file (``configs/datasets/oxford_pets.yaml``, as CoOp does), the
registry and ``results.json`` by its class name (``OxfordPets``), and the papers' tables by a short name
(``Flowers102``, ``DTD``). ``display_name`` maps any of them to the table name; unknown names (toy
datasets) pass through unchanged.
"""

# (config-file name, registry class name, table name), in the papers' column order.
ELEVEN_DATASETS = (
    ("imagenet", "ImageNet", "ImageNet"),
    ("caltech101", "Caltech101", "Caltech101"),
    ("oxford_pets", "OxfordPets", "OxfordPets"),
    ("stanford_cars", "StanfordCars", "StanfordCars"),
    ("oxford_flowers", "OxfordFlowers", "Flowers102"),
    ("food101", "Food101", "Food101"),
    ("fgvc_aircraft", "FGVCAircraft", "FGVCAircraft"),
    ("sun397", "SUN397", "SUN397"),
    ("dtd", "DescribableTextures", "DTD"),
    ("eurosat", "EuroSAT", "EuroSAT"),
    ("ucf101", "UCF101", "UCF101"),
)
IMAGENET_VARIANTS = (
    ("imagenetv2", "ImageNetV2", "ImageNetV2"),
    ("imagenet_sketch", "ImageNetSketch", "ImageNetSketch"),
    ("imagenet_a", "ImageNetA", "ImageNetA"),
    ("imagenet_r", "ImageNetR", "ImageNetR"),
)

FEWSHOT_DATASETS = tuple(entry[0] for entry in ELEVEN_DATASETS)
BASE2NEW_DATASETS = FEWSHOT_DATASETS
SOURCE_DATASET = "imagenet"
CROSS_DATASET_TARGETS = tuple(entry[0] for entry in ELEVEN_DATASETS[1:])
DG_TARGETS = tuple(entry[0] for entry in IMAGENET_VARIANTS)
FEWSHOT_SHOTS = (1, 2, 4, 8, 16)

_ALIASES = {
    alias.lower(): table
    for config, registry, table in ELEVEN_DATASETS + IMAGENET_VARIANTS
    for alias in (config, registry, table)
}


def display_name(dataset: str) -> str:
    """Table name of a dataset given its config, registry or table name (unknown names unchanged)."""
    return _ALIASES.get(dataset.lower(), dataset)


def order_key(dataset: str) -> tuple:
    """Sort key putting datasets in the papers' column order, unknown ones after, alphabetically."""
    order = [entry[2] for entry in ELEVEN_DATASETS + IMAGENET_VARIANTS]
    name = display_name(dataset)
    return (order.index(name), "") if name in order else (len(order), name)


# Trainers in the order tables list them when no order is given: each baseline, then its GRAM variant.
METHOD_ORDER = ("ZeroshotCLIP", "CoOp", "CoCoOp", "KgCoOp", "VPT", "MaPLe", "ProMetaR", "TPT")
GRAM_SUFFIX = "_GRAM"


def method_key(trainer: str) -> tuple:
    """Sort key of a trainer: METHOD_ORDER, a GRAM variant right after its baseline, unknown ones after."""
    trainer = trainer.replace("-", "_")
    base = trainer[: -len(GRAM_SUFFIX)] if trainer.endswith(GRAM_SUFFIX) else trainer
    rank = METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER)
    return (rank, base if rank == len(METHOD_ORDER) else "", trainer.endswith(GRAM_SUFFIX))
