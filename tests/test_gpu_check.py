"""bench/gpu_check.py's CPU-independent pieces: a trainer check on a tiny CLIP and the report it writes
(the GPU run itself is never part of the suite)."""
import importlib.util
import json
import os
import sys

import pytest

from helpers_clip import REPO


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(REPO, "bench", "gpu_check.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_without_cuda_the_check_says_so_in_one_line_and_exits_zero(capsys, monkeypatch):
    gpu_check = load_gpu_check()
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", "/nonexistent/never/written"]) == 0
    out = capsys.readouterr().out.strip()
    assert "\n" not in out and out.startswith("gpu_check: no CUDA device")


def test_a_trainer_check_on_a_tiny_clip_writes_the_json_and_the_table(tmp_path, tiny_vit_checkpoint):
    from datasets.fixtures import build_fixture

    gpu_check = load_gpu_check()
    root = str(tmp_path / "data")
    build_fixture("ImageNet", root, num_classes=10, images_per_class=4, image_size=40)
    result = gpu_check.check_trainer("CoOp", "configs/trainers/CoOp/tiny_ep10.yaml", root, tiny_vit_checkpoint,
                                     str(tmp_path / "run"), steps=2, device="cpu")
    assert result.ok and result.steps == 2 and result.prec == "fp32/fp32" and result.seconds_per_step > 0
    failed = gpu_check.guarded("broken", lambda: gpu_check.check_trainer(
        "CoOp", "configs/trainers/CoOp/missing.yaml", root, tiny_vit_checkpoint, str(tmp_path / "x"), 2, (), "cpu"))
    assert not failed.ok and failed.note
    json_path, md_path = gpu_check.write_report([result, failed], str(tmp_path / "report"), {"device": "cpu"})
    with open(json_path) as handle:
        payload = json.load(handle)
    assert [row["check"] for row in payload["results"]] == ["CoOp", "broken"]
    assert payload["results"][0]["losses"] == pytest.approx(result.losses)
    table = open(md_path).read().splitlines()
    assert table[2].startswith("| check |") and "| CoOp | tiny_ep10 | fp32/fp32 | 2 | yes |" in table[4]
    assert table[5].startswith("| broken |") and "| NO |" in table[5]
