"""Every shipped YAML config merges into the full config tree (no unknown or misspelled keys)."""
import glob
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, REPO))
def test_config_merges_into_the_default_tree(path):
    from tools.cli import default_cfg

    cfg = default_cfg()
    cfg.merge_from_file(path)


def test_there_are_configs_for_every_registered_trainer_family():
    folders = {os.path.basename(p) for p in glob.glob(os.path.join(REPO, "configs", "trainers", "*"))}
    assert {"ZeroshotCLIP", "CoOp", "CoCoOp", "VPT", "MaPLe", "ProMetaR", "TPT"} <= folders
