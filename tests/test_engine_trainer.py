"""TrainerX end to end on a generated dataset: learning, log lines, checkpoints, resume, bad input."""
import os
import re

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dassl.engine import build_trainer
from dassl.utils import set_random_seed, setup_logger
from engine_fixtures import TinyLinear, linear_weights, make_cfg, write_tiny_colors


class Interrupted(Exception):
    pass


class InterruptedTinyLinear(TinyLinear):
    """Dies right after the first epoch's checkpoint, like a job killed between epochs."""

    def after_epoch(self):
        super().after_epoch()
        if self.epoch == 0:
            raise Interrupted


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_colors")
    write_tiny_colors(str(root))
    return str(root)


def run(trainer_cls, cfg):
    set_random_seed(cfg.SEED)
    trainer = trainer_cls(cfg)
    trainer.train()
    return trainer


def test_loss_falls_and_test_accuracy_beats_chance(data_root, tmp_path, capsys):
    trainer = run(TinyLinear, make_cfg(data_root, str(tmp_path)))
    losses = torch.tensor(trainer.loss_history).view(3, -1).mean(1)
    assert losses[-1] < 0.5 * losses[0]
    assert trainer.test() > 60.0  # 3 classes: chance is 33%
    out = capsys.readouterr().out
    line = re.compile(
        r"epoch \[1/3\] batch \[2/6\] time \d+\.\d{3} \(\d+\.\d{3}\) data \d+\.\d{3} \(\d+\.\d{3}\) "
        r"loss \d+\.\d{4} \(\d+\.\d{4}\) acc \d+\.\d{4} \(\d+\.\d{4}\) lr 1\.0000e-02 eta \d+:\d{2}:\d{2}"
    )
    assert line.search(out), out
    assert "Finish training\nDeploy the last-epoch model\nEvaluate on the *test* set\n=> result\n* total: 12" in out
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert len(events.Scalars("train/loss")) == 18  # one point per batch: 3 epochs x 6 batches
    assert [s.step for s in events.Scalars("test/accuracy")] == [2]


def test_cpu_is_used_silently_when_cuda_is_requested_but_absent(data_root, tmp_path):
    trainer = TinyLinear(make_cfg(data_root, str(tmp_path), "USE_CUDA", True))
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert trainer.device.type == expected


def test_checkpoints_follow_dassl_layout_and_load_back(data_root, tmp_path):
    out = tmp_path / "out"
    trainer = run(TinyLinear, make_cfg(data_root, str(out), "TRAIN.CHECKPOINT_FREQ", 2))
    folder = out / "linear"
    assert sorted(os.listdir(folder)) == ["checkpoint", "model.pth.tar-2", "model.pth.tar-3"]
    assert (folder / "checkpoint").read_text() == "model.pth.tar-3\n"
    checkpoint = torch.load(folder / "model.pth.tar-3", weights_only=True)
    assert {"state_dict", "epoch", "optimizer", "scheduler", "val_result"} <= set(checkpoint)
    assert checkpoint["epoch"] == 3 and checkpoint["val_result"] is None
    assert torch.equal(checkpoint["state_dict"]["2.weight"], linear_weights(trainer))

    epoch2 = torch.load(folder / "model.pth.tar-2", weights_only=True)["state_dict"]["2.weight"]
    fresh = TinyLinear(make_cfg(data_root, str(tmp_path / "other")))
    fresh.load_model(str(out), epoch=2)
    assert torch.equal(linear_weights(fresh), epoch2)
    with pytest.raises(FileNotFoundError, match="model-best.pth.tar"):
        fresh.load_model(str(out))


def test_best_val_saves_and_deploys_the_best_model(data_root, tmp_path, capsys):
    run(TinyLinear, make_cfg(data_root, str(tmp_path), "TEST.FINAL_MODEL", "best_val"))
    assert (tmp_path / "linear" / "model-best.pth.tar").is_file()
    out = capsys.readouterr().out
    assert "Evaluate on the *val* set" in out and "Deploy the model with the best val performance" in out
    assert re.search(r"Load .*model-best\.pth\.tar to linear \(epoch=\d, val_result=\d+\.\d\)", out)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_after_interrupt_reproduces_weights(data_root, tmp_path, num_workers):
    opts = ("TRAIN.CHECKPOINT_FREQ", 1, "DATALOADER.NUM_WORKERS", num_workers)
    uninterrupted = run(TinyLinear, make_cfg(data_root, str(tmp_path / "full"), *opts))

    cfg = make_cfg(data_root, str(tmp_path / "resumed"), *opts)
    with pytest.raises(Interrupted):
        run(InterruptedTinyLinear, cfg)
    resumed = run(TinyLinear, cfg)
    assert resumed.start_epoch == 1
    assert torch.equal(linear_weights(resumed), linear_weights(uninterrupted))
    assert resumed.sched.get_last_lr() == uninterrupted.sched.get_last_lr()


def test_resume_without_rng_state_would_diverge(data_root, tmp_path):
    """The saved random state is what makes the resume exact (guards the test above)."""
    opts = ("TRAIN.CHECKPOINT_FREQ", 1)
    uninterrupted = run(TinyLinear, make_cfg(data_root, str(tmp_path / "full"), *opts))
    cfg = make_cfg(data_root, str(tmp_path / "resumed"), *opts)
    with pytest.raises(Interrupted):
        run(InterruptedTinyLinear, cfg)
    path = tmp_path / "resumed" / "linear" / "model.pth.tar-1"
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["rng_state"]
    torch.save(checkpoint, path)
    resumed = run(TinyLinear, cfg)
    assert not torch.equal(linear_weights(resumed), linear_weights(uninterrupted))


def test_loading_a_checkpoint_of_another_model_names_file_model_and_key(data_root, tmp_path):
    run(TinyLinear, make_cfg(data_root, str(tmp_path / "small"), "OPTIM.MAX_EPOCH", 1))
    other = TinyLinear(make_cfg(data_root, str(tmp_path / "big"), "INPUT.SIZE", (4, 4)))
    with pytest.raises(ValueError) as info:
        other.load_model(str(tmp_path / "small"), epoch=1)
    message = str(info.value)
    assert "\n" not in message
    assert "model.pth.tar-1 is a checkpoint of another model" in message
    assert 'model "linear"' in message and 'key "2.weight"' in message
    with pytest.raises(ValueError, match="checkpoint of another model"):
        TinyLinear(make_cfg(data_root, str(tmp_path / "small"), "INPUT.SIZE", (4, 4))).train()


def test_unwritable_output_dir_is_named(data_root, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    trainer = TinyLinear(make_cfg(data_root, str(blocker / "out")))
    with pytest.raises(OSError, match=f"Cannot create directory {blocker}/out"):
        trainer.train()

    def refuse(path, exist_ok=False):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "makedirs", refuse)
    with pytest.raises(PermissionError, match=f"Cannot create directory {tmp_path}/locked: Permission denied"):
        setup_logger(str(tmp_path / "locked"))


def test_build_trainer_builds_registered_trainer(data_root, tmp_path):
    trainer = build_trainer(make_cfg(data_root, str(tmp_path)))
    assert isinstance(trainer, TinyLinear)
    assert trainer.num_classes == 3 and trainer.lab2cname[2] == "blue"
    assert trainer.get_model_names() == ["linear"]
