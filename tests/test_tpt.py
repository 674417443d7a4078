"""TPT and TPT_GRAM: view selection, the entropy step, per-sample reset, and the GRAM identity case."""
import math
import os

import pytest
import torch

from helpers_clip import build_clip_trainer
from helpers_gram import run_meta_training
from trainers.tpt import TestTimeTuner, confident_view_indices, marginal_entropy, view_entropy

TINY_TPT = "configs/trainers/TPT/tiny.yaml"


def test_confident_views_are_exactly_the_lowest_entropy_fraction():
    logits = torch.randn(64, 10) * torch.linspace(0.1, 8, 64).unsqueeze(1)
    chosen = confident_view_indices(logits, 0.1)
    assert len(chosen) == 6
    entropy = view_entropy(logits)
    assert entropy[chosen].max() <= entropy[~torch.isin(torch.arange(64), chosen)].min()


def test_marginal_entropy_is_the_entropy_of_the_mean_prediction():
    logits = torch.randn(5, 7)
    mean = logits.softmax(-1).mean(0)
    torch.testing.assert_close(marginal_entropy(logits), -(mean * mean.log()).sum())


@pytest.fixture(scope="module")
def tpt_trainer(dataset_root, tiny_vit_checkpoint, tmp_path_factory):
    return build_clip_trainer("TPT", TINY_TPT, dataset_root, str(tmp_path_factory.mktemp("tpt")), tiny_vit_checkpoint)


def test_entropy_falls_after_the_step_and_the_prompt_is_reset(tpt_trainer):
    trainer = tpt_trainer
    tuner = trainer.build_tuner()
    views, _ = trainer.parse_batch_test(next(iter(trainer.test_loader)))
    views = views[0]
    before = [p.detach().clone() for p in tuner.params]
    with torch.no_grad():
        features = trainer.model.image_features(views)
        logits = tuner.logits(features)
        selected = confident_view_indices(logits, tuner.selection_p)
        entropy_before = float(marginal_entropy(logits[selected]))
    tuner.optimizer.zero_grad()
    with torch.enable_grad():
        marginal_entropy(tuner.logits(features)[selected]).backward()
    tuner.optimizer.step()
    with torch.no_grad():
        entropy_after = float(marginal_entropy(tuner.logits(features)[selected]))
    assert entropy_after < entropy_before
    tuner.reset()
    for param, initial in zip(tuner.params, before):
        torch.testing.assert_close(param.detach(), initial)
    tuner.predict(views)
    for param, initial in zip(tuner.params, before):
        torch.testing.assert_close(param.detach(), initial)
    assert not tuner.optimizer.state or all(not s for s in tuner.optimizer.state.values())


def test_tpt_evaluates_and_prints_dassl_result_lines(tpt_trainer, capsys):
    accuracy = tpt_trainer.test()
    assert 0.0 <= accuracy <= 100.0
    assert "* accuracy:" in capsys.readouterr().out


@pytest.fixture(scope="module")
def tta_meta_checkpoint(gram_split, tiny_vit_checkpoint, tmp_path_factory):
    split_file, _ = gram_split
    output = str(tmp_path_factory.mktemp("meta_tta"))
    run_meta_training(split_file, tiny_vit_checkpoint, output,
                      ["TRAINER.GRAM.ITERS_PER_EPOCH", 1, "OPTIM.MAX_EPOCH", 1, "TRAINER.GRAM.TTA", True,
                       "TRAINER.GRAM.TTA_ITERS", 2, "TRAINER.GRAM.TTA_IMAGES", 2])
    return os.path.join(output, "meta_checkpoint.pth")


def _predictions(trainer_name, opts, dataset_root, backbone, output):
    from dassl.utils import set_random_seed

    trainer = build_clip_trainer(trainer_name, TINY_TPT, dataset_root, output, backbone, opts)
    set_random_seed(3)
    tuner = trainer.build_tuner()
    batches = [trainer.parse_batch_test(b)[0][0] for _, b in zip(range(3), trainer.test_loader)]
    return torch.cat([tuner.predict(views) for views in batches])


def test_tpt_gram_with_identity_regulator_equals_tpt(tta_meta_checkpoint, dataset_root, tiny_vit_checkpoint, tmp_path):
    plain = _predictions("TPT", [], dataset_root, tiny_vit_checkpoint, str(tmp_path / "a"))
    gram = _predictions("TPT_GRAM", ["TRAINER.GRAM.META_CKPT", tta_meta_checkpoint, "TRAINER.GRAM.LOAD_INIT", False,
                                     "TRAINER.GRAM.REGULATOR", "identity"],
                        dataset_root, tiny_vit_checkpoint, str(tmp_path / "b"))
    torch.testing.assert_close(gram, plain)


def test_tpt_gram_regulates_the_test_time_step(tta_meta_checkpoint, dataset_root, tiny_vit_checkpoint, tmp_path):
    opts = ["TRAINER.GRAM.META_CKPT", tta_meta_checkpoint]
    trainer = build_clip_trainer("TPT_GRAM", TINY_TPT, dataset_root, str(tmp_path), tiny_vit_checkpoint, opts)
    tuner: TestTimeTuner = trainer.build_tuner()
    assert tuner.rewrite_gradient is not None
    logits = tuner.predict(trainer.parse_batch_test(next(iter(trainer.test_loader)))[0][0])
    assert logits.shape == (1, trainer.num_classes) and math.isfinite(float(logits.sum()))
