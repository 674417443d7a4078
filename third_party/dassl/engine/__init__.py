"""Trainers: ``TRAINER_REGISTRY``, ``build_trainer`` and the Dassl trainer classes."""
from .build import TRAINER_REGISTRY, build_trainer  # isort:skip
from .trainer import SimpleNet, SimpleTrainer, TrainerBase, TrainerX, TrainerXU  # isort:skip

__all__ = ["TRAINER_REGISTRY", "build_trainer", "TrainerBase", "SimpleTrainer", "TrainerX", "TrainerXU", "SimpleNet"]
