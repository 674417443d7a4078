"""meta_train.py under torchrun (gloo, 2 processes): the meta-batch split over ranks gives the meta checkpoint of
one process taking the whole meta-batch; a rank killed mid-run is relaunched and the run resumes."""
import os
import signal
import subprocess
import sys

import pytest
import torch

from helpers_clip import entry_point_env
from helpers_distributed import torchrun
from helpers_gram import REPO
from trainers.gram.meta_checkpoint import load_meta_checkpoint

# meta_train.py whose rank 1 kills itself (SIGKILL) when epoch 2 starts, the first time only.
KILLING_META_TRAIN = """
import os, runpy, signal, sys
from trainers.gram.meta_trainer import MetaTrainer

run_epoch = MetaTrainer.run_epoch
marker = os.environ["KILL_MARKER"]

def run_epoch_or_die(self):
    if self.epoch == 1 and os.environ["RANK"] == "1" and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    run_epoch(self)

MetaTrainer.run_epoch = run_epoch_or_die
sys.argv = ["meta_train.py"] + sys.argv[1:]
runpy.run_path("meta_train.py", run_name="__main__")
"""


def _arguments(split_file, backbone, output):
    return ["--config-file", "configs/gram/tiny_coop.yaml", "--split-file", split_file, "--backbone", backbone,
            "--output-dir", str(output), "--seed", "1", "OPTIM.MAX_EPOCH", "3", "TRAINER.GRAM.ITERS_PER_EPOCH", "2",
            "TRAINER.GRAM.META_BATCH", "4", "TRAINER.GRAM.VAL_TASKS", "1"]


def _assert_same_checkpoint(path, reference_path):
    checkpoint, reference = load_meta_checkpoint(path), load_meta_checkpoint(reference_path)
    for name, tensor in reference.prompt_init.items():
        torch.testing.assert_close(checkpoint.prompt_init[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
    for name, tensor in reference.regulator_state.items():
        torch.testing.assert_close(checkpoint.regulator_state[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.slow
def test_two_ranks_killed_and_relaunched_give_the_one_process_meta_checkpoint(gram_split, tiny_vit_checkpoint,
                                                                             tmp_path):
    split_file, _ = gram_split
    single = subprocess.run([sys.executable, "meta_train.py", *_arguments(split_file, tiny_vit_checkpoint,
                                                                          tmp_path / "one")],
                            cwd=REPO, env=entry_point_env(), capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]

    os.environ["KILL_MARKER"] = str(tmp_path / "killed")
    try:
        arguments = ["-c", KILLING_META_TRAIN, *_arguments(split_file, tiny_vit_checkpoint, tmp_path / "two")]
        killed = torchrun(2, "--no-python", sys.executable, *arguments, timeout=600)
        assert killed.returncode != 0 and os.path.exists(tmp_path / "killed"), killed.stderr[-3000:]
        assert f"exitcode  : -{int(signal.SIGKILL)}" in killed.stderr or "SIGKILL" in killed.stderr, killed.stderr[-3000:]
        assert not (tmp_path / "two" / "meta_checkpoint.pth").exists()
        assert (tmp_path / "two" / "meta" / "model.pth.tar-1").exists()

        relaunched = torchrun(2, "--no-python", sys.executable, *arguments, timeout=600)
    finally:
        del os.environ["KILL_MARKER"]
    assert relaunched.returncode == 0, relaunched.stdout[-3000:] + relaunched.stderr[-3000:]
    assert "meta-batch split over 2 ranks" in relaunched.stdout and "will resume training" in relaunched.stdout and relaunched.stdout.count("Meta checkpoint written") == 1
    _assert_same_checkpoint(tmp_path / "two" / "meta_checkpoint.pth", tmp_path / "one" / "meta_checkpoint.pth")
