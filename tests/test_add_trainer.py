"""Adding a trainer is one Python file: a new module in a ``trainers/`` folder declares its class, its config
keys and its GRAM variant, and train.py and meta_train.py pick it up with no other file touched."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from helpers_clip import REPO, entry_point_env

pytestmark = pytest.mark.slow

# A user's method: CoOp with a temperature on the logits, declared in its own config section.
USER_TRAINER = '''
"""ScaledCoOp: CoOp with its logits divided by TRAINER.SCALEDCOOP.TEMPERATURE."""
import torch.nn.functional as F
from dassl.engine import TRAINER_REGISTRY
from yacs.config import CfgNode as CN

from trainers.config import config_section
from trainers.coop import CoOp
from trainers.gram.mixin import GRAMMixin


@config_section
def scaled_coop_config(cfg):
    cfg.TRAINER.SCALEDCOOP = CN()
    cfg.TRAINER.SCALEDCOOP.TEMPERATURE = 1.0


@TRAINER_REGISTRY.register()
class ScaledCoOp(CoOp):
    def compute_loss(self, images, labels):
        logits = self.model(images) / self.cfg.TRAINER.SCALEDCOOP.TEMPERATURE
        return F.cross_entropy(logits, labels), logits


@TRAINER_REGISTRY.register()
class ScaledCoOp_GRAM(GRAMMixin, ScaledCoOp):
    """ScaledCoOp from the meta-learned init, trained with regulated gradients."""
'''

# Runs the three stages in one process, on the tests' tiny colour dataset.
STAGES = '''
import sys
import helpers_clip  # registers ClipColorFixture
import meta_train, train
from tools.cli import UsageError

root, clip, split, out = sys.argv[1:5]
common = ["--root", root, "--config-file", "configs/trainers/CoOp/tiny_ep10.yaml", "--seed", "1",
          "DATASET.NAME", "ClipColorFixture", "MODEL.BACKBONE.NAME", clip, "OPTIM.MAX_EPOCH", "2"]
try:
    train.main(train.build_parser().parse_args(
        ["--trainer", "ScaledCoOp", "--output-dir", out + "/typo", *common, "TRAINER.SCALEDCOOP.TEMPERATUR", "0.5"]))
except UsageError as error:
    print("REFUSED", error)
train.main(train.build_parser().parse_args(
    ["--trainer", "ScaledCoOp", "--output-dir", out + "/plain", *common, "TRAINER.SCALEDCOOP.TEMPERATURE", "0.5"]))
meta_train.main(meta_train.build_parser().parse_args(
    ["--config-file", "configs/gram/tiny_coop.yaml", "--split-file", split, "--method", "ScaledCoOp",
     "--output-dir", out + "/meta", "--seed", "1", "MODEL.BACKBONE.NAME", clip,
     "TRAINER.GRAM.ITERS_PER_EPOCH", "2", "TRAINER.GRAM.META_BATCH", "1", "TRAINER.GRAM.VAL_TASKS", "1"]))
train.main(train.build_parser().parse_args(
    ["--trainer", "ScaledCoOp_GRAM", "--output-dir", out + "/gram", *common,
     "TRAINER.GRAM.META_CKPT", out + "/meta/meta_checkpoint.pth"]))
'''


def test_a_new_trainer_file_trains_meta_trains_and_gets_gram(tmp_path, dataset_root, tiny_vit_checkpoint, gram_split):
    from trainers.gram.meta_checkpoint import load_meta_checkpoint

    package = tmp_path / "user_code" / "trainers"  # a trainers/ folder of the user's, outside the repository
    package.mkdir(parents=True)
    (package / "scaled_coop.py").write_text(textwrap.dedent(USER_TRAINER))
    out = tmp_path / "runs"
    env = entry_point_env(PYTHONPATH=os.pathsep.join(
        [str(tmp_path / "user_code"), REPO, os.path.join(REPO, "third_party"), os.path.join(REPO, "tests")]))
    result = subprocess.run([sys.executable, "-c", STAGES, dataset_root, tiny_vit_checkpoint, gram_split[0], str(out)],
                            capture_output=True, text=True, cwd=REPO, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]

    assert "REFUSED" in result.stdout and "TRAINER.SCALEDCOOP.TEMPERATUR" in result.stdout
    for run in ("plain", "gram"):
        with open(out / run / "results.json") as handle:
            record = json.load(handle)
        assert 0.0 <= record["accuracy"] <= 100.0
    assert "TEMPERATURE: 0.5" in (out / "plain" / "log.txt").read_text()
    checkpoint = load_meta_checkpoint(str(out / "meta" / "meta_checkpoint.pth"))
    assert checkpoint.method == "ScaledCoOp"
    assert set(checkpoint.prompt_init) == {"prompt_learner.ctx"}
    assert "GRAM: prompts initialized from the meta checkpoint" in (out / "gram" / "log.txt").read_text()
