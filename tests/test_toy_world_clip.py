"""The toy world's tiny CLIP: pretraining learns the world's words, the checkpoint is OpenAI's format, the cache."""
import os
import sys
import time

import clip
import numpy as np
import pytest
import torch

import make_toy_world
from datasets.toy_world import PretrainSettings, ensure_toy_clip, read_toy_clip_record
from datasets.toy_world.pretrain import encode_captions, pretrain_clip
from trainers.backbone.clip_loader import load_clip
from testing.tiny_clip import build_tiny_clip


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
    assert record["warm_start_last_loss"] < 0.8 * record["warm_start_first_loss"]
    assert record["contrastive_last_loss"] < 0.8 * record["contrastive_first_loss"]


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


def test_pretraining_is_deterministic_and_trains_both_towers():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8)
    captions = [f"a photo of {words}" for words in ("a circle", "two stars", "a red ring", "four shapes")] * 4
    labels = rng.integers(0, 3, size=(16, 2))
    settings = PretrainSettings(warm_start_steps=2, warm_start_batch_size=8, contrastive_steps=2, contrastive_batch_size=8)
    first, _ = pretrain_clip(images, captions, labels, [3, 3], settings, group_size=4, seed=5, progress=False)
    again, _ = pretrain_clip(images, captions, labels, [3, 3], settings, group_size=4, seed=5, progress=False)
    untrained = build_tiny_clip(seed=5).state_dict()
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name
    for name in ("visual.conv1.weight", "token_embedding.weight", "text_projection"):
        assert not torch.equal(first.state_dict()[name], untrained[name]), name
