"""The toy world's tiny CLIP: pretraining learns the world's words, the checkpoint is OpenAI's format, the cache."""
import os
import sys
import time

import clip
import pytest
import torch

import make_toy_world
from datasets.toy_world import ensure_toy_clip, read_toy_clip_record
from datasets.toy_world.pretrain import encode_captions
from trainers.backbone.clip_loader import load_clip
from trainers.backbone.tiny_clip import build_tiny_clip


@pytest.fixture(scope="module")
def toy_clip(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("toy_clip") / "data")
    return root, ensure_toy_clip(root, seed=0, size="tiny", progress=False)


def test_tiny_preset_zero_shot_is_well_above_chance(toy_clip):
    """Even the seconds-long tiny preset learns the world's words: colour x shape names far above chance,
    and the four downstream datasets above chance on average (shape names alone stay the hardest)."""
    root, _ = toy_clip
    zero_shot = read_toy_clip_record(root)["zero_shot"]
    assert zero_shot["ToyColorShapes"]["all"] >= 3 * zero_shot["ToyColorShapes"]["chance"], zero_shot
    downstream = ("ToyShapes", "ToyColorShapes", "ToyTextures", "ToyCounting")
    margin = sum(zero_shot[name]["all"] - zero_shot[name]["chance"] for name in downstream) / len(downstream)
    assert margin >= 3.0, zero_shot


def test_pretraining_loss_falls(toy_clip):
    record = read_toy_clip_record(toy_clip[0])
    assert record["last_loss"] < 0.8 * record["first_loss"]


def test_checkpoint_loads_as_an_openai_clip(toy_clip):
    _, path = toy_clip
    model = load_clip(path)
    assert model.context_length == 77 and model.visual.input_resolution == 32
    state = torch.load(path, map_location="cpu")
    assert {"visual.conv1.weight", "text_projection", "logit_scale", "positional_embedding"} <= set(state)


def test_second_call_reuses_the_checkpoint(toy_clip):
    root, path = toy_clip
    modified = os.path.getmtime(path)
    started = time.time()
    assert ensure_toy_clip(root, seed=0, size="tiny", progress=False) == path
    assert os.path.getmtime(path) == modified and time.time() - started < 10


def test_cli_reuses_the_world_and_prints_the_checkpoint_path(toy_clip, capsys, monkeypatch):
    root, path = toy_clip
    monkeypatch.setattr(sys, "argv", ["make_toy_world.py", "--root", root, "--size", "tiny"])
    make_toy_world.main()
    lines = capsys.readouterr().out.strip().splitlines()
    assert "reused" in lines[0] and "ToyShapes" in "\n".join(lines)
    assert lines[-1] == path


def test_encode_captions_equals_clip_encode_text():
    model = build_tiny_clip(seed=3)
    tokens = clip.tokenize(["a photo of a red circle", "a sketch of two small blue striped stars on the left"])
    with torch.no_grad():
        assert torch.allclose(encode_captions(model, tokens), model.encode_text(tokens), atol=1e-5)
