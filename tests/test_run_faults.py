"""Faults while a run writes its checkpoints: a process killed mid-write, a full disk. The run folder stays
usable, the restarted run ends with the weights of an uninterrupted one, and the user reads one line."""
import errno
import os
import subprocess
import sys

import pytest
import torch

from dassl.utils import DiskFullError, load_checkpoint, set_random_seed
from engine_fixtures import TinyLinear, linear_weights, make_cfg, write_tiny_colors
from helpers_clip import REPO, entry_point_env
from fileio.atomic import write_atomically
from tools.cli import run_entry_point

OPTS = ("TRAIN.CHECKPOINT_FREQ", 1)
KILLED_WRITE = """
import os, signal, sys
from dassl.utils import write_atomic

def write_then_die(handle):
    handle.write(b"half a checkpoint")
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)

write_atomic(sys.argv[1], write_then_die, mode="wb")
"""


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_colors")
    write_tiny_colors(str(root))
    return str(root)


def run(cfg):
    set_random_seed(cfg.SEED)
    trainer = TinyLinear(cfg)
    trainer.train()
    return trainer


@pytest.fixture(scope="module")
def uninterrupted(data_root, tmp_path_factory):
    return linear_weights(run(make_cfg(data_root, str(tmp_path_factory.mktemp("full")), *OPTS)))


def temporaries(folder):
    return [name for name in os.listdir(folder) if name.endswith(".tmp")]


@pytest.mark.scenario("train.py", "fault")
def test_temporary_left_by_a_kill_during_a_checkpoint_write_is_removed_on_restart(data_root, uninterrupted, tmp_path,
                                                                                  capsys):
    model_dir = tmp_path / "run" / "linear"
    model_dir.mkdir(parents=True)
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(model_dir / "model.pth.tar-1")],
                            env=entry_point_env(), capture_output=True, timeout=120)
    assert killed.returncode == -9 and len(temporaries(model_dir)) == 1  # what kill -9 leaves
    resumed = run(make_cfg(data_root, str(tmp_path / "run"), *OPTS))
    assert temporaries(model_dir) == [] and "Removed 1 temporary file(s)" in capsys.readouterr().out
    assert torch.equal(linear_weights(resumed), uninterrupted)


class NoSpaceLeft:
    """``torch.save`` that fails like a full disk for the checkpoint of ``epoch``."""

    def __init__(self, epoch):
        self.epoch, self.save = epoch, torch.save

    def __call__(self, state, handle, *args, **kwargs):
        if isinstance(state, dict) and state.get("epoch") == self.epoch:
            handle.write(b"part of it")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.save(state, handle, *args, **kwargs)


@pytest.mark.scenario("train.py", "fault")
def test_full_disk_while_writing_a_checkpoint_is_one_line_and_earlier_checkpoints_survive(
        data_root, uninterrupted, tmp_path, monkeypatch):
    cfg = make_cfg(data_root, str(tmp_path / "run"), *OPTS)
    model_dir = tmp_path / "run" / "linear"
    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", NoSpaceLeft(epoch=2))
        with pytest.raises(DiskFullError) as error:
            run(cfg)
    message = str(error.value)
    assert message.startswith(f"cannot write {model_dir / 'model.pth.tar-2'}: No space left on device (")
    assert "KiB free on" in message and "\n" not in message
    assert temporaries(model_dir) == [] and not (model_dir / "model.pth.tar-2").exists()
    assert load_checkpoint(str(model_dir / "model.pth.tar-1"))["epoch"] == 1
    assert (model_dir / "checkpoint").read_text().strip() == "model.pth.tar-1"
    resumed = run(cfg)  # space freed: the run resumes from epoch 1 and ends as if nothing happened
    assert resumed.start_epoch == 1 and torch.equal(linear_weights(resumed), uninterrupted)


def test_entry_points_report_a_full_disk_in_one_line(tmp_path, capsys):
    def main(args):
        raise DiskFullError(str(tmp_path / "model.pth.tar-3"), OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    class Parser:
        def parse_args(self):
            return None

    with pytest.raises(SystemExit) as exit_:
        run_entry_point(main, Parser(), "train.py")
    assert str(exit_.value.code).startswith(f"train.py: error: cannot write {tmp_path / 'model.pth.tar-3'}: No space")


def test_full_disk_in_the_toolbox_writers_names_the_file(tmp_path):
    def full(handle):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    path = str(tmp_path / "results.json")
    with pytest.raises(OSError) as error:
        write_atomically(path, full)
    assert error.value.strerror.startswith(f"cannot write {path}: No space left on device")
    assert os.listdir(tmp_path) == []


def meta_train_into(output, split_file, clip, monkeypatch):
    """meta_train.py (tiny config, seed 1) run in this process as from the shell; returns its meta checkpoint."""
    import meta_train

    argv = ["--config-file", os.path.join(REPO, "configs/gram/tiny_coop.yaml"), "--split-file", split_file,
            "--output-dir", output, "--seed", "1", "MODEL.BACKBONE.NAME", clip,
            "TRAINER.GRAM.ITERS_PER_EPOCH", "1", "TRAINER.GRAM.VAL_TASKS", "1"]
    monkeypatch.setattr(sys, "argv", ["meta_train.py", *argv])
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # its logger replaces stdout; put it back after
    run_entry_point(meta_train.main, meta_train.build_parser(), "meta_train.py")
    return os.path.join(output, "meta_checkpoint.pth")


@pytest.fixture(scope="module")
def reference_meta_checkpoint(gram_split, tiny_vit_checkpoint, tmp_path_factory):
    from trainers.gram.meta_checkpoint import load_meta_checkpoint

    with pytest.MonkeyPatch.context() as patch:
        output = str(tmp_path_factory.mktemp("meta_full"))
        return load_meta_checkpoint(meta_train_into(output, gram_split[0], tiny_vit_checkpoint, patch))


def assert_same_meta_checkpoint(checkpoint, reference):
    for field in ("prompt_init", "regulator_state"):
        for name, tensor in getattr(reference, field).items():
            assert torch.equal(getattr(checkpoint, field)[name], tensor), name


@pytest.mark.scenario("meta_train.py", "fault")
def test_full_disk_while_writing_the_meta_checkpoint_then_a_rerun_writes_the_same_one(
        gram_split, tiny_vit_checkpoint, reference_meta_checkpoint, tmp_path, monkeypatch, capsys):
    from trainers.gram.meta_checkpoint import load_meta_checkpoint

    save = torch.save

    def full_for_meta_checkpoints(obj, handle, *args, **kwargs):
        if isinstance(obj, dict) and str(obj.get("format", "")).startswith("gram-meta-checkpoint"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return save(obj, handle, *args, **kwargs)

    output = str(tmp_path / "cut")
    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", full_for_meta_checkpoints)
        with pytest.raises(SystemExit) as exit_:
            meta_train_into(output, gram_split[0], tiny_vit_checkpoint, patch)
    message = str(exit_.value.code)
    assert message.startswith(f"meta_train.py: error: cannot write {tmp_path / 'cut' / 'meta_checkpoint.pth'}: No "
                              "space left on device (") and "\n" not in message
    resumed = meta_train_into(output, gram_split[0], tiny_vit_checkpoint, monkeypatch)  # resumes at the last epoch
    assert "Previous epoch: 2" in capsys.readouterr().out
    assert_same_meta_checkpoint(load_meta_checkpoint(resumed), reference_meta_checkpoint)


@pytest.mark.scenario("meta_train.py", "fault")
def test_meta_training_after_a_kill_during_a_checkpoint_write_ends_as_an_uninterrupted_run(
        gram_split, tiny_vit_checkpoint, reference_meta_checkpoint, tmp_path, monkeypatch):
    from trainers.gram.meta_checkpoint import load_meta_checkpoint

    model_dir = tmp_path / "run" / "meta"
    model_dir.mkdir(parents=True)
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(model_dir / "model.pth.tar-1")],
                            env=entry_point_env(), capture_output=True, timeout=120)
    assert killed.returncode == -9 and len(temporaries(model_dir)) == 1
    path = meta_train_into(str(tmp_path / "run"), gram_split[0], tiny_vit_checkpoint, monkeypatch)
    assert temporaries(model_dir) == []
    assert_same_meta_checkpoint(load_meta_checkpoint(path), reference_meta_checkpoint)


class FillingFile:
    """A file on a disk that fills up after ``room`` bytes (its writes then fail with ENOSPC)."""

    def __init__(self, handle, room):
        self.handle, self.room = handle, room

    def write(self, data):
        self.room -= len(data)
        if self.room < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


@pytest.mark.parametrize("writer", ["engine", "toolbox"])
def test_a_disk_that_fills_up_inside_torch_save_is_recognised(tmp_path, monkeypatch, writer):
    """torch.save turns the file's ENOSPC into a RuntimeError of its zip writer; the writers still name it."""
    from dassl.utils import write_atomic

    fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FillingFile(fdopen(fd, mode), room=2000))
    path = str(tmp_path / "model.pth.tar-2")
    state = {"w": torch.zeros(10_000)}
    with pytest.raises(OSError) as error:
        if writer == "engine":
            write_atomic(path, lambda handle: torch.save(state, handle), mode="wb")
        else:
            write_atomically(path, lambda handle: torch.save(state, handle), binary=True)
    assert error.value.strerror.startswith(f"cannot write {path}: No space left on device (")
    assert os.listdir(tmp_path) == []
