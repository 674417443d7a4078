"""Checks shared by the tests of the VPT, MaPLe, ProMetaR and KgCoOp trainers.

Each test file trains its trainer once on the colour fixture with a tiny CLIP (``train_briefly``)
and runs these checks on the result; the fixtures come from ``conftest.py``.
"""
from typing import Dict, List, Sequence

import torch

from helpers_clip import build_clip_trainer, record_losses
from trainers.gram.task_loss import PairBatch, make_pair_loss

QUIET = ["TRAIN.PRINT_FREQ", "1000"]
RESULT_LINES = ("=> result", "* total: 16", "* correct:", "* accuracy:", "* error:", "* macro_f1:")
CAPTIONS = ["a red square", "something green", "a blue sky", "yellow paint"]


def train_briefly(trainer_name: str, config: str, root: str, output_dir: str, checkpoint: str,
                  opts: Sequence[str] = ()) -> Dict:
    """Train once; keep the trainer, every model weight before training and the per-epoch losses."""
    trainer = build_clip_trainer(trainer_name, config, root, output_dir, checkpoint,
                                 ["TEST.NO_TEST", "True", *QUIET, *opts])
    before = {name: param.detach().clone() for name, param in trainer.model.named_parameters()}
    history = record_losses(trainer)
    trainer.train()
    return {"trainer": trainer, "before": before, "history": history, "output_dir": output_dir}


def changed_weights(trained: Dict) -> List[str]:
    """Names of the model weights that training changed."""
    return [name for name, param in trained["trainer"].model.named_parameters()
            if not torch.equal(param, trained["before"][name])]


def epoch_means(history: List[List[float]]) -> List[float]:
    return [sum(losses) / len(losses) for losses in history]


def check_result_lines_and_reload(trained: Dict, capsys, trainer_name: str, config: str, root: str, checkpoint: str,
                                  output_dir: str, epoch: int) -> float:
    """Evaluation prints Dassl's result block; a fresh trainer loading the checkpoint of ``epoch``
    (what ``train.py --eval-only --model-dir ... --load-epoch`` does) reproduces the accuracy."""
    accuracy = trained["trainer"].test()
    printed = capsys.readouterr().out
    for line in RESULT_LINES:
        assert line in printed
    reloaded = build_clip_trainer(trainer_name, config, root, output_dir, checkpoint, QUIET)
    reloaded.load_model(trained["output_dir"], epoch=epoch)
    for name, param in trained["trainer"].prompt_parameters().items():
        assert torch.equal(reloaded.prompt_parameters()[name], param), name
    assert reloaded.test() == accuracy
    return accuracy


def shared_tests(trainer_name: str, config: str, epochs: int):
    """The two tests every prompt-method test file runs on its module's ``trained`` fixture (assign them to
    module-level names so pytest collects them): the training loss falls, and evaluation prints Dassl's
    result lines while a trainer reloaded from the checkpoint reproduces the accuracy."""

    def test_training_loss_falls(trained):
        means = epoch_means(trained["history"])
        assert len(means) == epochs and means[-1] < 0.9 * means[0]

    def test_evaluation_prints_result_lines_and_reload_reproduces_accuracy(trained, capsys, dataset_root,
                                                                           tiny_vit_checkpoint, tmp_path):
        accuracy = check_result_lines_and_reload(trained, capsys, trainer_name, config, dataset_root,
                                                 tiny_vit_checkpoint, str(tmp_path), epochs)
        assert accuracy > 25.0  # four classes: above chance

    return test_training_loss_falls, test_evaluation_prints_result_lines_and_reload_reproduces_accuracy


def sample_images(trainer, count: int = 4) -> torch.Tensor:
    return next(iter(trainer.test_loader))["img"][:count].to(trainer.device)


def check_pair_logits(model: torch.nn.Module, images: torch.Tensor, classnames: List[str]) -> None:
    """``pair_logits`` is [N_images, N_texts] and, with the class names as texts, equals the class logits."""
    with torch.no_grad():
        assert model.pair_logits(images, CAPTIONS[:3]).shape == (len(images), 3)
        torch.testing.assert_close(model.pair_logits(images, classnames), model(images))


def check_prompts_substitutable(model: torch.nn.Module, images: torch.Tensor) -> None:
    """GRAM's contract: the trainable tensors are found by name and ``functional_call`` can
    substitute them in ``pair_logits``: every one gets a gradient, other values give other losses."""
    params = {name: param for name, param in model.named_parameters() if param.requires_grad}
    pair_loss = make_pair_loss(model)
    batch = PairBatch(images[:len(CAPTIONS)], CAPTIONS)
    loss = pair_loss(params, batch)
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    for name, grad in zip(params, grads):
        assert grad is not None and grad.abs().sum() > 0, name
    generator = torch.Generator().manual_seed(0)
    shifted = {name: param.detach() + 0.05 * torch.randn(param.shape, generator=generator).to(param)
               for name, param in params.items()}
    with torch.no_grad():
        assert abs(pair_loss(shifted, batch).item() - loss.item()) > 1e-4
        torch.testing.assert_close(pair_loss(params, batch), loss.detach())


def check_ready_for_gram(trainer) -> None:
    """Both GRAM contracts on a trained trainer: ``pair_logits`` and substitutable prompts."""
    images = sample_images(trainer)
    check_pair_logits(trainer.model, images, trainer.dm.dataset.classnames)
    check_prompts_substitutable(trainer.model, images)
