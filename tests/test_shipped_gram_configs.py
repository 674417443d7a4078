"""Every shipped GRAM config (configs/gram/*.yaml) meta-trains through every command that uses it.

``scripts/gram/meta_train.sh`` and ``run_protocol.py``'s automatic meta-training issue the same command
(``--seed 1`` by default). A ``meta_train.py`` command typed without ``--seed`` (``SEED`` -1) with query mixup,
as the old configs had, used to fail inside ``numpy.random.default_rng``. Here the script's own command line
(recorded by a stand-in interpreter), less its ``--seed``, is run in this process with a tiny CLIP for one
meta-step; only sizes are overridden, never mixup.
"""
import argparse
import glob
import json
import os
import subprocess
import sys

import pytest

import meta_train
import run_protocol
from helpers_clip import REPO
from trainers.gram.meta_checkpoint import load_meta_checkpoint

CONFIGS = sorted(os.path.splitext(os.path.basename(path))[0]
                 for path in glob.glob(os.path.join(REPO, "configs/gram/*.yaml")))
SMALL = ("OPTIM.MAX_EPOCH 1 TRAINER.GRAM.ITERS_PER_EPOCH 1 TRAINER.GRAM.META_BATCH 1 TRAINER.GRAM.VAL_TASKS 1 "
         "TRAINER.GRAM.SUPPORT_SIZE 4 TRAINER.GRAM.QUERY_SIZE 4 TRAINER.GRAM.TTA_ITERS 1 TRAINER.GRAM.TTA_IMAGES 1 "
         "TRAINER.VPT.PROMPT_DEPTH_VISION 2 TRAINER.MAPLE.PROMPT_DEPTH 2 TRAINER.PROMETAR.PROMPT_DEPTH_TEXT 2 "
         "TRAINER.PROMETAR.PROMPT_DEPTH_VISION 2")


def script_command(tmp_path, config: str, opts: str) -> list:
    """The meta_train.py arguments scripts/gram/meta_train.sh passes (recorded by tools.synthetic_runs)."""
    record = tmp_path / "record.jsonl"
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    env = dict(os.environ, DATA=str(data), PYTHON=f"{sys.executable} -m tools.synthetic_runs", PYTHONPATH=REPO,
               STUB_RECORD=str(record), OPTS=opts, OUTPUT=str(tmp_path / "output"))
    completed = subprocess.run(["bash", os.path.join(REPO, "scripts/gram/meta_train.sh"), config, "split.json"],
                               env=env, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    (argv,) = [json.loads(line)["argv"] for line in record.read_text().splitlines()]
    return argv


def test_every_gram_config_is_tested():
    assert {"coop", "cocoop", "vpt", "maple", "tpt"} <= set(CONFIGS)


@pytest.mark.parametrize("config", CONFIGS)
def test_shipped_gram_config_meta_trains_from_the_script_command(config, gram_split, tiny_vit_checkpoint, tmp_path,
                                                                 monkeypatch):
    split_file, manifest = gram_split
    opts = f"MODEL.BACKBONE.NAME {tiny_vit_checkpoint} TRAINER.GRAM.CORPUS {manifest} {SMALL}"
    argv = script_command(tmp_path, config, opts)
    assert argv[0] == "meta_train.py" and argv[argv.index("--seed") + 1] == "1"  # SEED's default in the script
    job = run_protocol._meta_train_job(
        argparse.Namespace(split_file="split.json", meta_config=config, python=sys.executable,
                           root=str(tmp_path / "data"), opts=opts.split()),
        "CoOp_GRAM", os.path.join(str(tmp_path / "output"), "gram", config, "meta_checkpoint.pth"))
    assert job.command[1:] == argv  # run_protocol meta-trains with the same command

    # A hand-typed ``meta_train.py`` command has no --seed (SEED -1), the case that crashed with query mixup:
    # meta-train with the script's command less its seed.
    seed_at = argv.index("--seed")
    argv = [split_file if arg == "split.json" else arg for arg in argv[:seed_at] + argv[seed_at + 2:]]
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # meta_train's logger replaces stdout; put it back after
    meta_train.main(meta_train.build_parser().parse_args(argv[1:]))
    out = argv[argv.index("--output-dir") + 1]
    checkpoint = load_meta_checkpoint(os.path.join(out, "meta_checkpoint.pth"))
    assert checkpoint.prompt_init and all(t.isfinite().all() for t in checkpoint.prompt_init.values())
