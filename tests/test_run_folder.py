"""A run folder belongs to one run: other settings cannot resume it, a second process cannot enter it."""
import json
import os
import subprocess
import sys
import time

import pytest

from helpers_clip import REPO, entry_point_env
from tools.cli import UsageError

TINY_COOP = "configs/trainers/CoOp/tiny_ep10.yaml"
HOLD_LOCK = """
import sys, time
from tools.run_folder import claimed_run_folder
with claimed_run_folder(sys.argv[1], None):
    print("held", flush=True)
    time.sleep(120)
"""


def train(root, output, backbone, *opts, seed="1"):
    import train as train_py

    argv = ["--root", root, "--trainer", "CoOp", "--config-file", os.path.join(REPO, TINY_COOP), "--output-dir",
            output, "--seed", seed, "DATASET.NAME", "ClipColorFixture", "MODEL.BACKBONE.NAME", backbone,
            "OPTIM.MAX_EPOCH", "1", *opts]
    train_py.main(train_py.build_parser().parse_args(argv), env_info=False)


def result(folder):
    with open(os.path.join(folder, "results.json")) as handle:
        return json.load(handle)


@pytest.fixture
def finished_run(dataset_root, tiny_vit_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # train.py's logger replaces stdout; put it back after
    output = str(tmp_path / "seed1")
    train(dataset_root, output, tiny_vit_checkpoint)
    return output


@pytest.mark.scenario("train.py", "bad input")
def test_resuming_a_finished_run_with_other_settings_is_refused(finished_run, dataset_root, tiny_vit_checkpoint):
    before = result(finished_run)
    with pytest.raises(UsageError) as error:
        train(dataset_root, finished_run, tiny_vit_checkpoint, "DATASET.NUM_SHOTS", "8", "OPTIM.LR", "0.05", seed="2")
    message = str(error.value)
    assert message.startswith(f"output dir {finished_run} holds a run with other settings (") and "\n" not in message
    assert "(seed is 1 there but 2 now; shots is -1 there but 8 now; optim.LR is 0.002 there but 0.05 now" in message
    assert result(finished_run) == before  # nothing claims seed 2 with seed 1's accuracy
    with pytest.raises(UsageError, match=r"other settings \(seed is 1 there but 2 now\)"):
        train(dataset_root, finished_run, tiny_vit_checkpoint, seed="2")


def test_the_same_settings_resume_and_more_epochs_are_allowed(finished_run, dataset_root, tiny_vit_checkpoint,
                                                              capsys):
    train(dataset_root, finished_run, tiny_vit_checkpoint)
    assert "Previous epoch: 1" in capsys.readouterr().out
    train(dataset_root, finished_run, tiny_vit_checkpoint, "OPTIM.MAX_EPOCH", "2")
    assert "Previous epoch: 1" in capsys.readouterr().out


@pytest.mark.scenario("train.py", "bad input")
def test_a_second_process_is_kept_out_of_a_folder_in_use(dataset_root, tiny_vit_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    output = str(tmp_path / "busy")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, output], env=entry_point_env(), cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UsageError) as error:
            train(dataset_root, output, tiny_vit_checkpoint)
        assert str(error.value) == (f"output dir {output} is in use by another process (pid {holder.pid}); wait "
                                    "for it to end or choose another --output-dir")
        assert not os.path.exists(os.path.join(output, "log.txt"))
    finally:
        holder.kill()
        holder.wait()
    train(dataset_root, output, tiny_vit_checkpoint)  # a killed holder leaves no lock behind
    assert result(output)["seed"] == 1


@pytest.mark.scenario("meta_train.py", "bad input")
def test_meta_training_into_a_folder_of_another_seed_is_refused(gram_split, tiny_vit_checkpoint, tmp_path,
                                                                monkeypatch):
    import meta_train

    monkeypatch.setattr(sys, "stdout", sys.stdout)
    split_file, _ = gram_split
    output = str(tmp_path / "meta")

    def meta(seed):
        argv = ["--config-file", os.path.join(REPO, "configs/gram/tiny_coop.yaml"), "--split-file", split_file,
                "--output-dir", output, "--seed", seed, "MODEL.BACKBONE.NAME", tiny_vit_checkpoint,
                "OPTIM.MAX_EPOCH", "1", "TRAINER.GRAM.ITERS_PER_EPOCH", "1", "TRAINER.GRAM.VAL_TASKS", "1"]
        meta_train.main(meta_train.build_parser().parse_args(argv))

    meta("1")
    started = os.path.getmtime(os.path.join(output, "meta_checkpoint.pth"))
    time.sleep(0.01)
    with pytest.raises(UsageError, match=r"holds a run with other settings \(seed is 1 there but 2 now\)"):
        meta("2")
    assert os.path.getmtime(os.path.join(output, "meta_checkpoint.pth")) == started
