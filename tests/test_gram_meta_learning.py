"""GRAM's meta-gradients against finite differences, and the regulator's defining properties."""
import pytest
import torch

from gram_toy_models import ToyPromptedPairModel, toy_pair_batch
from trainers.gram.meta_learning import MetaLearner, MetaLearningSettings, MetaTask, meta_objective
from trainers.gram.regulator import GradientRegulator, IdentityRegulator
from trainers.gram.task_loss import make_pair_loss, mix_query_with_support


def _setup(first_order: bool, inner_steps: int = 1):
    torch.manual_seed(0)
    model = ToyPromptedPairModel().double()
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    regulator = GradientRegulator({n: tuple(p.shape) for n, p in params.items()}, rank=3, gate_hidden=4).double()
    for p in regulator.parameters():  # leave the identity start so every phi gets a gradient
        torch.nn.init.normal_(p, std=0.5)
    settings = MetaLearningSettings(inner_lr=0.3, inner_steps=inner_steps, first_order=first_order,
                                    consistency_weight=0.5)
    support, query = toy_pair_batch(5, seed=1), toy_pair_batch(4, seed=2)
    support.images, query.images = support.images.double(), query.images.double()
    task = MetaTask(support, query, similarity=0.3)
    return model, params, regulator, settings, task


def _analytic_grads(params, regulator, loss_fn, task, settings):
    loss, _ = meta_objective(params, task, loss_fn, regulator, settings)
    tensors = list(params.values()) + list(regulator.parameters())
    return torch.autograd.grad(loss, tensors)


def _central_difference(fn, tensor, index, eps=1e-6):
    flat = tensor.data.view(-1)
    original = flat[index].item()
    flat[index] = original + eps
    up = fn()
    flat[index] = original - eps
    down = fn()
    flat[index] = original
    return (up - down) / (2 * eps)


def _check(tensors, grads, objective):
    for tensor, grad in zip(tensors, grads):
        gen = torch.Generator().manual_seed(tensor.numel())
        for index in torch.randint(tensor.numel(), (4,), generator=gen).tolist():
            numeric = _central_difference(objective, tensor, index)
            analytic = grad.reshape(-1)[index].item()
            scale = max(abs(numeric), abs(analytic), 1e-3)
            assert abs(numeric - analytic) / scale <= 1e-4, (tuple(tensor.shape), index, numeric, analytic)


@pytest.mark.parametrize("inner_steps", [1, 2])
def test_second_order_meta_gradient_equals_finite_differences(inner_steps):
    model, params, regulator, settings, task = _setup(first_order=False, inner_steps=inner_steps)
    loss_fn = make_pair_loss(model)
    grads = _analytic_grads(params, regulator, loss_fn, task, settings)

    def objective():
        loss, _ = meta_objective(params, task, loss_fn, regulator, settings)
        return loss.item()

    _check(list(params.values()) + list(regulator.parameters()), grads, objective)


def test_first_order_meta_gradient_equals_finite_differences_of_the_surrogate():
    """First order: inner gradients are constants, so the outer loss is L_Q(theta - a*psi_phi(g0))."""
    model, params, regulator, settings, task = _setup(first_order=True)
    loss_fn = make_pair_loss(model)
    grads = _analytic_grads(params, regulator, loss_fn, task, settings)
    support_loss = loss_fn(params, task.support)
    fixed = dict(zip(params, (g.detach() for g in torch.autograd.grad(support_loss, list(params.values())))))
    target = (1 + task.similarity) / 2

    def surrogate():
        regulated, coefficients = regulator(fixed)
        adapted = {n: params[n] - settings.inner_lr * regulated[n] for n in params}
        penalty = torch.stack([(c - target) ** 2 for c in coefficients.values()]).mean()
        return (loss_fn(adapted, task.query) + settings.consistency_weight * penalty).item()

    _check(list(params.values()) + list(regulator.parameters()), grads, surrogate)


def test_transform_keeps_each_row_norm_and_regulated_rows_are_never_longer():
    regulator = GradientRegulator({"ctx": (4, 8)}, rank=3).double()
    for p in regulator.parameters():
        torch.nn.init.normal_(p, std=1.0)
    grad = torch.randn(4, 8, dtype=torch.float64) * torch.tensor([[1e-4], [1.0], [3.0], [50.0]], dtype=torch.float64)
    per_tensor = regulator.regulator_for("ctx")
    transformed = per_tensor.transform(grad)
    assert not torch.allclose(transformed, grad)
    torch.testing.assert_close(transformed.norm(dim=-1), grad.norm(dim=-1))
    regulated, _ = regulator({"ctx": grad})
    assert torch.all(regulated["ctx"].norm(dim=-1) <= grad.norm(dim=-1) * (1 + 1e-9))


def test_fresh_regulator_returns_the_raw_gradient():
    regulator = GradientRegulator({"ctx": (3, 5), "bias": (5,)})
    grads = {"ctx": torch.randn(3, 5), "bias": torch.randn(5)}
    regulated, coefficients = regulator(grads)
    for name in grads:
        torch.testing.assert_close(regulated[name], grads[name])
        assert 0 < float(coefficients[name].detach()) < 1


def test_regulator_refuses_an_unknown_prompt_tensor():
    regulator = GradientRegulator({"ctx": (3, 5)})
    with pytest.raises(KeyError, match="visual_ctx"):
        regulator({"visual_ctx": torch.randn(2, 5)})


def test_identity_regulated_inner_step_is_plain_gradient_descent():
    model, params, _, settings, task = _setup(first_order=True)
    loss_fn = make_pair_loss(model)
    settings.consistency_weight = 0.0
    loss, _ = meta_objective(params, task, loss_fn, IdentityRegulator(), settings)
    grads = torch.autograd.grad(loss_fn(params, task.support), list(params.values()))
    adapted = {n: p - settings.inner_lr * g for (n, p), g in zip(params.items(), grads)}
    torch.testing.assert_close(loss, loss_fn(adapted, task.query))


def test_mixup_targets_are_distributions_over_query_and_support_captions():
    import numpy as np

    query, support = toy_pair_batch(4, seed=1), toy_pair_batch(3, seed=2)
    mixed = mix_query_with_support(query, support, alpha=0.5, rng=np.random.default_rng(0))
    assert mixed.texts == query.texts + support.texts
    torch.testing.assert_close(mixed.targets.sum(dim=1), torch.ones(4))
    lam = mixed.targets[torch.arange(4), torch.arange(4)]
    assert torch.all((lam > 0) & (lam < 1))
    again = mix_query_with_support(query, support, alpha=0.5, rng=np.random.default_rng(0))
    torch.testing.assert_close(again.images, mixed.images)


def test_meta_training_lowers_the_query_loss_after_adaptation():
    torch.manual_seed(0)
    model = ToyPromptedPairModel()
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    regulator = GradientRegulator({n: tuple(p.shape) for n, p in params.items()}, rank=3)
    learner = MetaLearner(params, regulator, make_pair_loss(model), MetaLearningSettings(inner_lr=0.2))
    optimizer = torch.optim.Adam(list(params.values()) + list(regulator.parameters()), lr=0.05)
    tasks = [MetaTask(toy_pair_batch(6, seed=2 * i), toy_pair_batch(6, seed=2 * i + 1), 0.0) for i in range(4)]
    first = learner.meta_gradients(tasks)["query_loss"]
    for _ in range(40):
        learner.step(tasks, optimizer)
    last = learner.meta_gradients(tasks)["query_loss"]
    assert last < 0.9 * first, (first, last)
