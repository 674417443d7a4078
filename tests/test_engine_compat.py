"""trainers.dassl_compat: patch upstream Dassl's warmup schedulers on torch without ``verbose``.

The module is loaded from its file so that this test does not import every trainer
(``trainers/__init__.py`` registers them all).
"""
import importlib.util
import math
import os.path as osp
import sys
import types

import pytest
import torch
import torch.nn as nn
from torch.optim.lr_scheduler import CosineAnnealingLR, _LRScheduler

import dassl


def load_compat_module() -> types.ModuleType:
    path = osp.join(osp.dirname(__file__), "..", "trainers", "dassl_compat.py")
    spec = importlib.util.spec_from_file_location("dassl_compat_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compat = load_compat_module()
ensure_dassl_compat = compat.ensure_dassl_compat


def make_upstream_like_lr_scheduler_module() -> types.ModuleType:
    """Warmup schedulers shaped like upstream Dassl's: ``verbose`` passed on positionally."""

    class _BaseWarmupScheduler(_LRScheduler):
        def __init__(self, optimizer, successor, warmup_epoch, last_epoch=-1, verbose=False):
            self.successor = successor
            self.warmup_epoch = warmup_epoch
            super().__init__(optimizer, last_epoch, verbose)

        def step(self, epoch=None):
            if self.last_epoch >= self.warmup_epoch:
                self.successor.step(epoch)
                self._last_lr = self.successor.get_last_lr()
            else:
                super().step(epoch)

    class ConstantWarmupScheduler(_BaseWarmupScheduler):
        def __init__(self, optimizer, successor, warmup_epoch, cons_lr, last_epoch=-1, verbose=False):
            self.cons_lr = cons_lr
            super().__init__(optimizer, successor, warmup_epoch, last_epoch, verbose)

        def get_lr(self):
            if self.last_epoch >= self.warmup_epoch:
                return self.successor.get_last_lr()
            return [self.cons_lr for _ in self.base_lrs]

    module = types.ModuleType("dassl.optim.lr_scheduler")
    module._BaseWarmupScheduler = _BaseWarmupScheduler
    module.ConstantWarmupScheduler = ConstantWarmupScheduler
    return module


@pytest.fixture
def upstream_dassl(monkeypatch):
    package = types.ModuleType("dassl")
    package.__version__ = "0.6.3"
    package.__file__ = "/site-packages/dassl/__init__.py"
    lr_scheduler = make_upstream_like_lr_scheduler_module()
    monkeypatch.setitem(sys.modules, "dassl", package)
    monkeypatch.setitem(sys.modules, "dassl.optim.lr_scheduler", lr_scheduler)
    return lr_scheduler


def build(lr_scheduler, base_lr=0.1, max_epoch=4):
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base_lr)
    cosine = CosineAnnealingLR(optimizer, float(max_epoch))
    return optimizer, lr_scheduler.ConstantWarmupScheduler(optimizer, cosine, 1, 1e-5)


@pytest.mark.skipif(compat.torch_schedulers_accept_verbose(), reason="this torch still accepts verbose")
def test_upstream_warmup_fails_on_this_torch_until_patched(upstream_dassl, capsys, tmp_path):
    with pytest.raises(TypeError):
        build(upstream_dassl)
    ensure_dassl_compat()
    assert "dassl_compat: upstream Dassl 0.6.3 on torch" in capsys.readouterr().out

    optimizer, scheduler = build(upstream_dassl)
    lrs = []
    for _ in range(4):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([1e-5] + [0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(3)])

    torch.save(scheduler.state_dict(), tmp_path / "sched.pt")
    restored_optimizer, restored = build(upstream_dassl)
    restored.load_state_dict(torch.load(tmp_path / "sched.pt", weights_only=True))
    restored_optimizer.load_state_dict(optimizer.state_dict())
    optimizer.step()
    scheduler.step()
    restored_optimizer.step()
    restored.step()
    assert restored.get_last_lr() == scheduler.get_last_lr()

    ensure_dassl_compat()  # idempotent: no second patch, no second log line
    assert capsys.readouterr().out == ""


def test_bundled_engine_is_left_alone(capsys):
    from dassl.optim import lr_scheduler

    assert dassl.IS_BUNDLED_ENGINE
    before = lr_scheduler._BaseWarmupScheduler.__init__
    ensure_dassl_compat()
    assert lr_scheduler._BaseWarmupScheduler.__init__ is before
    assert capsys.readouterr().out == ""
