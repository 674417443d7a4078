"""build_optimizer (param groups, staged LR) and build_lr_scheduler (warmup + cosine/step values)."""
import math

import pytest
import torch
import torch.nn as nn

from dassl.config import get_cfg_default
from dassl.optim import build_lr_scheduler, build_optimizer


def optim_cfg(**values):
    cfg = get_cfg_default().OPTIM
    for key, value in values.items():
        setattr(cfg, key, value)
    return cfg


class TwoPart(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(4, 4)
        self.classifier = nn.Linear(4, 2)


def lrs_per_epoch(cfg, epochs):
    """The LR each epoch trains at, stepping the scheduler after each epoch as the trainers do."""
    param = nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer([param], cfg)
    scheduler = build_lr_scheduler(optimizer, cfg)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("warmup_type", ["constant", "linear"])
def test_warmup_then_cosine_follows_closed_form(warmup_type):
    base, max_epoch, warmup = 0.002, 10, 3
    cfg = optim_cfg(NAME="sgd", LR=base, MAX_EPOCH=max_epoch, LR_SCHEDULER="cosine", WARMUP_EPOCH=warmup,
                    WARMUP_TYPE=warmup_type, WARMUP_CONS_LR=1e-5, WARMUP_MIN_LR=1e-5)
    expected = []
    for epoch in range(max_epoch):
        if epoch < warmup:
            if warmup_type == "constant":
                expected.append(1e-5)
            else:
                expected.append(1e-5 if epoch == 0 else base * epoch / warmup)
        else:
            expected.append(base * (1 + math.cos(math.pi * (epoch - warmup) / max_epoch)) / 2)
    assert lrs_per_epoch(cfg, max_epoch) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_cosine_without_warmup_and_single_step():
    cosine = optim_cfg(NAME="sgd", LR=0.1, MAX_EPOCH=6, LR_SCHEDULER="cosine")
    assert lrs_per_epoch(cosine, 6) == pytest.approx([0.1 * (1 + math.cos(math.pi * e / 6)) / 2 for e in range(6)])
    step = optim_cfg(NAME="sgd", LR=0.1, MAX_EPOCH=6, LR_SCHEDULER="single_step", STEPSIZE=(2,), GAMMA=0.5)
    assert lrs_per_epoch(step, 6) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    multi = optim_cfg(NAME="sgd", LR=0.1, MAX_EPOCH=6, LR_SCHEDULER="multi_step", STEPSIZE=(1, 4), GAMMA=0.1)
    assert lrs_per_epoch(multi, 6) == pytest.approx([0.1, 0.01, 0.01, 0.01, 0.001, 0.001])


def test_warmup_scheduler_state_round_trips_and_is_weights_only_loadable(tmp_path):
    cfg = optim_cfg(NAME="sgd", LR=0.1, MAX_EPOCH=8, LR_SCHEDULER="cosine", WARMUP_EPOCH=2, WARMUP_TYPE="linear")
    param = nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer([param], cfg)
    scheduler = build_lr_scheduler(optimizer, cfg)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    torch.save(scheduler.state_dict(), tmp_path / "sched.pt")
    state = torch.load(tmp_path / "sched.pt", weights_only=True)

    fresh_param = nn.Parameter(torch.zeros(1))
    fresh_optimizer = build_optimizer([fresh_param], cfg)
    fresh = build_lr_scheduler(fresh_optimizer, cfg)
    fresh_optimizer.load_state_dict(optimizer.state_dict())
    fresh.load_state_dict(state)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
        fresh_optimizer.step()
        fresh.step()
        assert fresh_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]


def test_staged_lr_gives_base_layers_the_multiplied_lr():
    model = TwoPart()
    cfg = optim_cfg(NAME="sgd", LR=0.01, STAGED_LR=True, NEW_LAYERS=("classifier",), BASE_LR_MULT=0.1)
    optimizer = build_optimizer(model, cfg)
    base_group, new_group = optimizer.param_groups
    assert base_group["lr"] == pytest.approx(0.001) and new_group["lr"] == pytest.approx(0.01)
    assert {id(p) for p in base_group["params"]} == {id(p) for p in model.backbone.parameters()}
    assert {id(p) for p in new_group["params"]} == {id(p) for p in model.classifier.parameters()}


def test_staged_lr_with_unknown_layer_names_it():
    cfg = optim_cfg(NAME="sgd", STAGED_LR=True, NEW_LAYERS=("head",))
    with pytest.raises(ValueError, match=r"\['head'\] are not children"):
        build_optimizer(TwoPart(), cfg)


def test_explicit_param_groups_and_optimizer_choices():
    model = TwoPart()
    groups = [{"params": model.backbone.parameters(), "lr": 0.5}, {"params": model.classifier.parameters()}]
    optimizer = build_optimizer(model, optim_cfg(NAME="adamw", LR=0.01), param_groups=groups)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert [g["lr"] for g in optimizer.param_groups] == [0.5, 0.01]
    expected = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}
    for name, cls in expected.items():
        assert type(build_optimizer(model, optim_cfg(NAME=name))) is cls
    with pytest.raises(ValueError, match="but got lbfgs"):
        build_optimizer(model, optim_cfg(NAME="lbfgs"))
