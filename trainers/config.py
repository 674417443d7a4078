"""The toolbox's config tree: Dassl's defaults, the dataset keys and one section per trainer.

Each trainer module declares its own keys beside its class, in a function decorated with
``config_section`` (``trainers/coop.py`` holds ``TRAINER.COOP``, ``trainers/gram_trainers.py``
``TRAINER.GRAM``, ...). ``extend_cfg`` adds them all; it is what ``train.py`` (and the other entry points,
through ``tools.cli.default_cfg``) call before merging the dataset and trainer YAML files, so a key typed
on the command line that no trainer declares is refused by yacs with its name. Importing any module of
the ``trainers`` package imports every trainer module first (``trainers/__init__.py``), so every section
is declared by the time ``extend_cfg`` runs. Key names follow the reference implementations (CoOp,
CoCoOp, MaPLe, the VPT/IVLP trainers of MaPLe's repository, ProMetaR, TPT).
"""
from typing import Callable, Dict

from yacs.config import CfgNode as CN

ConfigSection = Callable[[CN], None]
_SECTIONS: Dict[str, ConfigSection] = {}  # by "module.function", in declaration order


def config_section(add_keys: ConfigSection) -> ConfigSection:
    """Declare a trainer's keys: ``add_keys(cfg)`` adds them to a config tree in ``extend_cfg``."""
    _SECTIONS[f"{add_keys.__module__}.{add_keys.__qualname__}"] = add_keys
    return add_keys


def clip_trainer_keys(**keys) -> CN:
    """A ``TRAINER.<METHOD>`` section: the keys every CLIP trainer reads, ``PREC`` (``"fp16"`` as in CoOp,
    ``"fp32"`` or ``"amp"``) and ``TEXT_CHUNK`` (classes encoded per text-encoder pass, 256), and the method's
    own ``keys``."""
    return CN({"PREC": "fp16", "TEXT_CHUNK": 256, **keys})


def extend_cfg(cfg: CN) -> None:
    """Add the dataset keys (CoOp's ``SUBSAMPLE_CLASSES``, ``IMAGE_ORDER``) and every declared trainer section to ``cfg``."""
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base or new
    cfg.DATASET.SKIP_UNREADABLE_IMAGES = False  # opt-in: decode every image first, drop (and count) unreadable ones
    # opt-in to unpickle checkpoints (prompt and meta) that torch.load(weights_only=True) refuses: trusted files only
    cfg.TRAIN.ALLOW_PICKLED_CHECKPOINTS = False
    # images of a class folder in the file system's listing order (CoOp's) or "sorted" (see datasets/base.py)
    cfg.DATASET.IMAGE_ORDER = "filesystem"
    for add_keys in _SECTIONS.values():
        add_keys(cfg)
