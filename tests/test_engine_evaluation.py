"""compute_accuracy and the Classification evaluator on a known confusion."""
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from dassl.config import get_cfg_default
from dassl.evaluation import build_evaluator
from dassl.metrics import compute_accuracy

# truth / prediction pairs: class 0: 3 right, 1 called 1; class 1: 2 right, 1 called 2; class 2: 1 right, 1 called 0
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2]
Y_PRED = [0, 0, 0, 1, 1, 1, 2, 2, 0]


def one_hot_scores(pred, num_classes=3):
    return torch.eye(num_classes)[torch.tensor(pred)]


def test_compute_accuracy_top1_and_top2():
    output = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    target = torch.tensor([1, 1, 0, 0])
    top1, top2 = compute_accuracy(output, target, topk=(1, 2))
    assert top1.item() == pytest.approx(50.0)  # rows 0 and 3
    assert top2.item() == pytest.approx(75.0)  # rows 0, 1 and 3


def test_classification_on_known_confusion(capsys, tmp_path):
    cfg = get_cfg_default()
    cfg.OUTPUT_DIR = str(tmp_path)
    cfg.TEST.PER_CLASS_RESULT = True
    cfg.TEST.COMPUTE_CMAT = True
    cfg.VERBOSE = False
    evaluator = build_evaluator(cfg, lab2cname={0: "cat", 1: "dog", 2: "owl"})
    evaluator.process(one_hot_scores(Y_PRED[:5]), torch.tensor(Y_TRUE[:5]))
    evaluator.process(one_hot_scores(Y_PRED[5:]), torch.tensor(Y_TRUE[5:]))
    results = evaluator.evaluate()

    # by hand: precision/recall per class: 0: 3/4, 3/4; 1: 2/3, 2/3; 2: 1/2, 1/2 -> F1 = P = R
    macro_f1 = 100 * (3 / 4 + 2 / 3 + 1 / 2) / 3
    assert list(results)[0] == "accuracy"
    assert results["accuracy"] == pytest.approx(100 * 6 / 9)
    assert results["error_rate"] == pytest.approx(100 * 3 / 9)
    assert results["macro_f1"] == pytest.approx(macro_f1)
    assert results["macro_f1"] == pytest.approx(100 * f1_score(Y_TRUE, Y_PRED, average="macro"))
    assert results["perclass_accuracy"] == pytest.approx(100 * (3 / 4 + 2 / 3 + 1 / 2) / 3)

    out = capsys.readouterr().out
    assert "=> result\n* total: 9\n* correct: 6\n* accuracy: 66.7%\n* error: 33.3%\n* macro_f1: 63.9%" in out
    assert re.search(r"\* class: 2 \(owl\)\ttotal: 2\tcorrect: 1\tacc: 50.0%", out)

    cmat = torch.load(tmp_path / "cmat.pt", weights_only=True)
    expected = np.array([[3 / 4, 1 / 4, 0], [0, 2 / 3, 1 / 3], [1 / 2, 0, 1 / 2]])
    assert np.allclose(cmat.numpy(), expected)


def test_macro_f1_ignores_labels_only_predicted_and_matches_sklearn():
    cfg = get_cfg_default()
    cfg.VERBOSE = False
    evaluator = build_evaluator(cfg)
    y_true, y_pred = [0, 0, 1, 1], [0, 3, 1, 0]
    evaluator.process(one_hot_scores(y_pred, num_classes=4), torch.tensor(y_true))
    expected = 100 * f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true))
    assert evaluator.evaluate()["macro_f1"] == pytest.approx(expected)


def test_reset_clears_previous_results():
    cfg = get_cfg_default()
    cfg.VERBOSE = False
    evaluator = build_evaluator(cfg)
    evaluator.process(one_hot_scores([1, 1]), torch.tensor([0, 0]))
    evaluator.reset()
    evaluator.process(one_hot_scores([0]), torch.tensor([0]))
    assert evaluator.evaluate()["accuracy"] == 100.0
