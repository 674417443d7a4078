"""The protocol card and the results.json record that train.py writes for every run."""
import argparse
import hashlib
import json
import os

import pytest
from yacs.config import CfgNode as CN

from tools import protocol_card
from tools.results import read_run


def _cfg(tmp_path, meta_ckpt=""):
    weights = tmp_path / "tiny_clip.pt"
    weights.write_bytes(b"weights of a tiny clip")
    cfg = CN()
    cfg.SEED = 2
    cfg.TRAINER = CN({"NAME": "CoOp_GRAM", "GRAM": CN({"META_CKPT": meta_ckpt})})
    cfg.DATASET = CN({"NAME": "DescribableTextures", "NUM_SHOTS": 4, "SUBSAMPLE_CLASSES": "base"})
    cfg.MODEL = CN({"BACKBONE": CN({"NAME": str(weights)})})
    cfg.TEST = CN({"SPLIT": "test"})
    args = argparse.Namespace(config_file="configs/trainers/CoOp/vit_b16_ep50.yaml",
                              dataset_config_file="configs/datasets/dtd.yaml", trainer="CoOp_GRAM")
    return cfg, args, weights


def _sha16(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()[:16]


def test_card_lists_the_protocol_and_fingerprints(tmp_path):
    meta = tmp_path / "meta_checkpoint.pth"
    meta.write_bytes(b"meta")
    cfg, args, weights = _cfg(tmp_path, str(meta))
    card = protocol_card.protocol_card(cfg, args)
    for expected in ("CoOp_GRAM", "configs/trainers/CoOp/vit_b16_ep50.yaml", "DescribableTextures",
                     "subsample", "base", _sha16(weights), _sha16(meta), "git_commit"):
        assert expected in card
    lines = dict(line.split(" : ", 1) for line in card.splitlines() if " : " in line)
    assert lines["shots".ljust(len(max(lines, key=len)))].strip() == "4"


def test_missing_meta_checkpoint_is_reported_not_raised(tmp_path):
    cfg, args, _ = _cfg(tmp_path, str(tmp_path / "absent.pth"))
    assert protocol_card.meta_ckpt_fingerprint(cfg).startswith("unavailable")
    cfg.TRAINER.GRAM.META_CKPT = ""
    assert protocol_card.meta_ckpt_fingerprint(cfg) == "none"


def test_results_record_has_the_contract_keys_and_round_trips(tmp_path):
    cfg, args, weights = _cfg(tmp_path)
    record = protocol_card.results_record(cfg, args, {"accuracy": 71.5, "error_rate": 28.5, "macro_f1": 70.1})
    assert tuple(record) == protocol_card.RECORD_KEYS
    assert record["error"] == 28.5 and record["seed"] == 2 and record["shots"] == 4
    assert record["clip_fingerprint"] == _sha16(weights) and record["meta_ckpt_fingerprint"] == "none"
    run_dir = str(tmp_path / "run")
    path = protocol_card.write_results_json(run_dir, record)
    assert json.load(open(path))["accuracy"] == 71.5
    assert read_run(run_dir).accuracy == 71.5
    assert [name for name in os.listdir(run_dir) if name.endswith(".tmp")] == []


def test_results_record_needs_an_accuracy(tmp_path):
    cfg, args, _ = _cfg(tmp_path)
    with pytest.raises(ValueError, match="accuracy"):
        protocol_card.results_record(cfg, args, {"error": 1.0})


def test_git_commit_is_unknown_outside_a_repository(tmp_path):
    assert protocol_card.git_commit(str(tmp_path)) == "unknown"
