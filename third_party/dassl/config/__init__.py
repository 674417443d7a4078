"""Dassl's default config tree (``get_cfg_default``) and ``clean_cfg``."""
from yacs.config import CfgNode

from .defaults import _C as cfg_default

__all__ = ["get_cfg_default", "clean_cfg", "cfg_default"]


def get_cfg_default() -> CfgNode:
    """A fresh copy of the default config (extend it, then merge YAML files and CLI opts)."""
    return cfg_default.clone()


def clean_cfg(cfg: CfgNode, trainer: str) -> None:
    """Drop every ``cfg.TRAINER.<X>`` section except ``NAME`` and the one of ``trainer``."""
    for key in list(cfg.TRAINER.keys()):
        if key not in ("NAME", trainer.upper()):
            cfg.TRAINER.pop(key, None)
