"""Classification evaluator: accuracy, error, macro F1, per-class accuracy, confusion matrix.

Macro F1 is averaged over the labels present in the ground truth (as Dassl, which calls
scikit-learn's ``f1_score(average="macro", labels=unique(y_true))``); a label's F1 is 0 when
its precision and recall are both 0. The confusion matrix is row-normalized (each true
class sums to 1) over the sorted labels seen in either truth or prediction.
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional

import numpy as np
import torch

from dassl.utils import mkdir_if_missing, write_atomic

from .build import EVALUATOR_REGISTRY

__all__ = ["EvaluatorBase", "Classification", "classification_scores"]


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray) -> Dict[str, float]:
    """Accuracy, error and macro F1 (all in %) of integer predictions."""
    labels = np.unique(y_true)
    size = int(max(y_true.max(), y_pred.max())) + 1
    true_pos = np.bincount(y_true[y_true == y_pred], minlength=size)[labels].astype(np.float64)
    predicted = np.bincount(y_pred, minlength=size)[labels].astype(np.float64)
    actual = np.bincount(y_true, minlength=size)[labels].astype(np.float64)
    precision = np.divide(true_pos, predicted, out=np.zeros_like(true_pos), where=predicted > 0)
    recall = true_pos / actual
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    accuracy = 100.0 * float(np.mean(y_pred == y_true))
    return {"accuracy": accuracy, "error_rate": 100.0 - accuracy, "macro_f1": 100.0 * float(f1.mean())}


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> torch.Tensor:
    """Row-normalized confusion matrix over the sorted union of labels."""
    labels = np.unique(np.concatenate([y_true, y_pred]))
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=np.float64)
    np.add.at(counts, ([index[t] for t in y_true], [index[p] for p in y_pred]), 1)
    rows = counts.sum(1, keepdims=True)
    return torch.from_numpy(np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0))


class EvaluatorBase:
    """Interface: ``reset()``, ``process(model_output, ground_truth)``, ``evaluate() -> OrderedDict``."""

    def __init__(self, cfg):
        self.cfg = cfg

    def reset(self) -> None:
        raise NotImplementedError

    def process(self, mo, gt) -> None:
        raise NotImplementedError

    def evaluate(self) -> "OrderedDict[str, float]":
        raise NotImplementedError


@EVALUATOR_REGISTRY.register()
class Classification(EvaluatorBase):
    """Accumulates argmax predictions; ``evaluate`` prints Dassl's result block.

    The first entry of the returned dict (accuracy) is what ``trainer.test()`` returns.
    """

    def __init__(self, cfg, lab2cname: Optional[Dict[int, str]] = None, **kwargs):
        super().__init__(cfg)
        if cfg.TEST.PER_CLASS_RESULT and lab2cname is None:
            raise ValueError("TEST.PER_CLASS_RESULT needs lab2cname (the label -> class name mapping)")
        self._lab2cname = lab2cname
        self.reset()

    def reset(self) -> None:
        self._y_true: List[torch.Tensor] = []
        self._y_pred: List[torch.Tensor] = []

    def process(self, mo: torch.Tensor, gt: torch.Tensor) -> None:
        """``mo``: (batch, classes) scores; ``gt``: (batch,) labels."""
        self._y_pred.append(mo.argmax(1).detach().cpu())
        self._y_true.append(gt.detach().cpu())

    def _arrays(self):
        if not self._y_true:
            raise ValueError("Nothing to evaluate: process() was never called with data")
        return torch.cat(self._y_true).numpy(), torch.cat(self._y_pred).numpy()

    def evaluate(self) -> "OrderedDict[str, float]":
        y_true, y_pred = self._arrays()
        scores = classification_scores(y_true, y_pred)
        results = OrderedDict(scores)
        correct = int(np.sum(y_true == y_pred))
        print(
            "=> result\n"
            f"* total: {len(y_true):,}\n"
            f"* correct: {correct:,}\n"
            f"* accuracy: {scores['accuracy']:.1f}%\n"
            f"* error: {scores['error_rate']:.1f}%\n"
            f"* macro_f1: {scores['macro_f1']:.1f}%"
        )
        if self.cfg.TEST.PER_CLASS_RESULT:
            results["perclass_accuracy"] = self._print_per_class(y_true, y_pred)
        if self.cfg.TEST.COMPUTE_CMAT:
            save_path = osp.join(self.cfg.OUTPUT_DIR, "cmat.pt")
            mkdir_if_missing(self.cfg.OUTPUT_DIR)
            cmat = confusion_matrix(y_true, y_pred)
            write_atomic(save_path, lambda f: torch.save(cmat, f), mode="wb")
            print(f"Confusion matrix is saved to {save_path}")
        return results

    def _print_per_class(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        print("=> per-class result")
        accs = []
        for label in np.unique(y_true):
            hits = y_pred[y_true == label] == label
            acc = 100.0 * float(hits.mean())
            accs.append(acc)
            print(
                f"* class: {label} ({self._lab2cname[int(label)]})\t"
                f"total: {len(hits):,}\tcorrect: {int(hits.sum()):,}\tacc: {acc:.1f}%"
            )
        mean_acc = float(np.mean(accs))
        print(f"* average: {mean_acc:.1f}%")
        return mean_acc
