"""Evaluators (``EVALUATOR_REGISTRY``, ``build_evaluator``; ``Classification``)."""
from .build import EVALUATOR_REGISTRY, build_evaluator  # isort:skip
from .evaluator import Classification, EvaluatorBase, classification_scores

__all__ = ["EVALUATOR_REGISTRY", "build_evaluator", "EvaluatorBase", "Classification", "classification_scores"]
