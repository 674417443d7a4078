"""Registries, build_trainer's unknown-name error and the config tree's unknown-key error."""
import pytest
from yacs.config import CfgNode

import engine_fixtures  # noqa: F401  (registers TinyColors / TinyLinear)
from dassl.config import get_cfg_default
from dassl.engine import TRAINER_REGISTRY, build_trainer
from dassl.utils import Registry


def test_register_as_decorator_and_call_then_get():
    registry = Registry("THING")

    @registry.register()
    class Alpha:
        pass

    def beta():
        return "beta"

    registry.register(beta)
    assert registry.get("Alpha") is Alpha
    assert registry.get("beta")() == "beta"
    assert registry.registered_names() == ["Alpha", "beta"]


def test_duplicate_registration_is_refused_unless_forced():
    registry = Registry("THING")

    class Alpha:
        pass

    registry.register(Alpha)
    with pytest.raises(KeyError, match='"Alpha" was already registered in "THING"'):
        registry.register(Alpha)
    registry.register(Alpha, force=True)
    assert registry.get("Alpha") is Alpha


def test_unknown_name_error_lists_registered_names():
    registry = Registry("THING")
    registry.register(type("Alpha", (), {}))
    registry.register(type("Gamma", (), {}))
    with pytest.raises(KeyError) as info:
        registry.get("Beta")
    assert str(info.value) == "Object name \"Beta\" does not exist in \"THING\" registry; registered: ['Alpha', 'Gamma']"


def test_build_trainer_unknown_name_lists_registered_trainers():
    cfg = get_cfg_default()
    cfg.TRAINER.NAME = "TinyLinaer"
    with pytest.raises(ValueError) as info:
        build_trainer(cfg)
    message = str(info.value)
    assert "\n" not in message
    assert 'Unknown trainer "TinyLinaer"' in message
    assert "TinyLinear" in message and 'did you mean "TinyLinear"' in message
    assert "TinyLinear" in TRAINER_REGISTRY.registered_names()


def test_unknown_config_key_from_command_line_is_named():
    cfg = get_cfg_default()
    with pytest.raises(AssertionError, match="Non-existent key: OPTIM.LRR"):  # yacs' own error
        cfg.merge_from_list(["OPTIM.LRR", "0.1"])


def test_default_config_keeps_dassl_keys_and_defaults():
    cfg = get_cfg_default()
    assert isinstance(cfg, CfgNode)
    assert cfg.DATALOADER.NUM_WORKERS == 4
    assert cfg.OPTIM.NAME == "adam" and cfg.OPTIM.LR == 0.0003 and cfg.OPTIM.LR_SCHEDULER == "single_step"
    assert cfg.OPTIM.STEPSIZE == (-1,) and cfg.OPTIM.WARMUP_EPOCH == -1 and cfg.OPTIM.WARMUP_RECOUNT is True
    assert cfg.TEST.EVALUATOR == "Classification" and cfg.TEST.FINAL_MODEL == "last_step"
    assert cfg.TRAIN.PRINT_FREQ == 10 and cfg.TRAIN.CHECKPOINT_FREQ == 0
    assert cfg.INPUT.SIZE == (224, 224) and cfg.INPUT.INTERPOLATION == "bilinear"
    # a fresh copy each call: editing one does not leak into the next
    cfg.OPTIM.LR = 1.0
    assert get_cfg_default().OPTIM.LR == 0.0003
