"""ProMetaR (IVLP prompts, meta-learned regularizer gate, mixup virtual tasks) on the colour fixture."""
import pytest
import torch

from helpers_clip import build_clip_trainer
from prompt_method_checks import QUIET, changed_weights, check_ready_for_gram, shared_tests, train_briefly
from trainers.prometar import RegularizerGate, split_support_query

CONFIG = "configs/trainers/ProMetaR/tiny_ep5_batch8_4+4ctx.yaml"
EPOCHS = 4
SHORT = ["OPTIM.MAX_EPOCH", str(EPOCHS), "DATASET.NUM_SHOTS", "4"]
PROMPTS = ["prompt_learner.ctx", "prompt_learner.deep_text.0", "prompt_learner.vision.prompts.0",
           "prompt_learner.vision.prompts.1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset_root, tiny_vit_checkpoint):
    output_dir = str(tmp_path_factory.mktemp("prometar"))
    return train_briefly("ProMetaR", CONFIG, dataset_root, output_dir, tiny_vit_checkpoint, SHORT)


@pytest.fixture
def fresh(dataset_root, tiny_vit_checkpoint, tmp_path):
    """An untrained ProMetaR trainer (past warm-up) and a test batch holding two classes."""
    trainer = build_clip_trainer("ProMetaR", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint,
                                 ["OPTIM.WARMUP_EPOCH", "0", "OPTIM_VNET.WARMUP_EPOCH", "0", *QUIET])
    batch = next(iter(trainer.test_loader))
    images, labels = batch["img"][:8], batch["label"][:8]
    assert len(torch.unique(labels)) == 2
    return trainer, images, labels


def test_prompts_train_the_regulator_is_a_separate_model_and_clip_is_unchanged(trained):
    trainer = trained["trainer"]
    assert list(trainer.prompt_parameters()) == PROMPTS
    assert changed_weights(trained) == PROMPTS
    assert trainer.get_model_names() == ["prompt_learner", "regulator"]
    gate_names = sorted(name.split(".")[1] for name, _ in trainer.regulator.named_parameters())
    assert gate_names == sorted(name.replace(".", "__") for name in PROMPTS for _ in range(2))
    first_gate = trainer.regulator.gates["prompt_learner__ctx"].gate
    assert first_gate[0].weight.shape == (4 * 64 // 8, 2 * 4 * 64)  # (numel / DIM_RATE, 2 numel)


test_training_loss_falls, test_evaluation_prints_result_lines_and_reload_reproduces_accuracy = \
    shared_tests("ProMetaR", CONFIG, EPOCHS)


def test_pair_logits_equal_class_logits_and_prompts_are_substitutable_for_gram(trained):
    check_ready_for_gram(trained["trainer"])


def test_gate_mixes_the_regularizer_gradient_into_the_task_gradient():
    torch.manual_seed(0)
    gate = RegularizerGate(numel=8, dim_rate=4)
    task, reg = torch.randn(2, 4), torch.randn(2, 4)
    with torch.no_grad():
        gamma = (gate(task, reg) - task) / reg
        assert ((gamma > 0) & (gamma < 1)).all()
        assert torch.allclose(gamma.view(2, 4), gamma.view(2, 4)[:, :1].expand(2, 4))  # one gate per 4 entries
        gate.gate[1].weight.zero_()  # gamma = sigmoid(0) = 1/2
        torch.testing.assert_close(gate(task, reg), task + 0.5 * reg)
    with pytest.raises(ValueError, match="DIM_RATE=3 must divide the prompt size 8"):
        RegularizerGate(numel=8, dim_rate=3)


def test_query_is_one_class_and_single_class_batches_have_no_virtual_task():
    torch.manual_seed(0)
    labels = torch.tensor([0, 1, 1, 2, 0, 2, 2, 1])
    support, query = split_support_query(labels)
    assert len(torch.unique(labels[query])) == 1
    assert sorted(torch.cat([support, query]).tolist()) == list(range(8))
    assert labels[query][0] not in labels[support]
    assert split_support_query(torch.tensor([3, 3, 3])) is None


def test_inner_step_changes_the_prompts_differentiably_in_the_regulator(fresh):
    trainer, images, labels = fresh
    params = trainer.prompt_parameters()
    adapted = trainer.adapted_prompts(images, labels)
    assert all(not torch.equal(adapted[name], params[name]) for name in PROMPTS)
    moved = sum(t.sum() for t in adapted.values())
    grads = torch.autograd.grad(moved, list(trainer.regulator.parameters()))
    assert all(grad.abs().sum() > 0 for grad in grads)


def test_meta_step_updates_the_regulator_and_the_prompts(fresh):
    trainer, images, labels = fresh
    regulator_before = [p.detach().clone() for p in trainer.regulator.parameters()]
    prompts_before = {name: p.detach().clone() for name, p in trainer.prompt_parameters().items()}
    assert trainer.meta_step(images, labels) > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.regulator.parameters())
    assert all(not torch.equal(p, before) for p, before in zip(trainer.regulator.parameters(), regulator_before))
    assert all(not torch.equal(p, prompts_before[n]) for n, p in trainer.prompt_parameters().items())
    assert trainer.meta_step(images[labels == labels[0]], labels[labels == labels[0]]) == 0.0


def test_meta_gradient_is_second_order_and_matches_finite_differences(fresh):
    trainer, images, labels = fresh
    support, query = torch.where(labels != labels[0])[0], torch.where(labels == labels[0])[0]
    partners = support[torch.arange(len(query)) % len(support)]
    lam = torch.linspace(0.2, 0.9, len(query))
    weights = [*trainer.prompt_parameters().values(), *trainer.regulator.parameters()]
    generator = torch.Generator().manual_seed(0)
    direction = [torch.randn(w.shape, generator=generator) * w.detach().std() for w in weights]

    def query_loss() -> torch.Tensor:
        return trainer.query_loss(images, labels, support, query, partners, lam)

    def directional_derivative() -> float:
        grads = torch.autograd.grad(query_loss(), weights)
        return sum((g * d).sum() for g, d in zip(grads, direction)).item()

    def shift(step: float) -> None:
        with torch.no_grad():
            for weight, d in zip(weights, direction):
                weight.add_(step * d)

    eps = 3e-4
    shift(eps)
    plus = query_loss().item()
    shift(-2 * eps)
    minus = query_loss().item()
    shift(eps)
    numeric = (plus - minus) / (2 * eps)
    second_order = directional_derivative()
    trainer.cfg.defrost()
    trainer.cfg.TRAINER.PROMETAR.FAST_ADAPTATION = True
    first_order = directional_derivative()
    assert abs(second_order - numeric) < 0.01 * abs(numeric)
    assert abs(first_order - numeric) > 0.1 * abs(numeric)  # the check tells second from first order


def test_a_step_with_chunked_text_encoding_equals_the_one_pass_step(dataset_root, tiny_vit_checkpoint, tmp_path):
    steps = []
    for chunk in ("256", "3"):  # 4 classes: one pass, or checkpointed chunks recomputed in the (double) backward
        trainer = build_clip_trainer("ProMetaR", CONFIG, dataset_root, str(tmp_path / chunk), tiny_vit_checkpoint,
                                     ["TRAINER.PROMETAR.TEXT_CHUNK", chunk, "OPTIM.WARMUP_EPOCH", "0", *QUIET])
        batch = next(iter(trainer.test_loader))
        trainer.batch_idx, trainer.num_batches = 0, 10
        torch.manual_seed(0)
        summary = trainer.forward_backward({"img": batch["img"][:8], "label": batch["label"][:8]})
        steps.append((summary, [p.detach().clone() for p in trainer.prompt_parameters().values()]))
    (one_pass, one_pass_prompts), (chunked, chunked_prompts) = steps
    assert one_pass["loss_query"] > 0
    assert chunked == pytest.approx(one_pass, rel=1e-4)
    for one, other in zip(one_pass_prompts, chunked_prompts):
        torch.testing.assert_close(other, one, rtol=1e-3, atol=1e-4)
