"""CLIP loading: names and paths, TorchScript archives and state dicts, tiny CLIPs, clear errors."""
import os

import pytest
import torch
from clip.model import ModifiedResNet, VisionTransformer

from helpers_clip import RN_TEST_SIZES
from trainers.backbone.clip_loader import CLIPCheckpointError, checkpoint_fingerprint, load_clip, load_clip_to_cpu
from testing.tiny_clip import build_tiny_clip, ensure_tiny_clip, save_clip_state_dict


def _inputs(resolution=32):
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(2, 3, resolution, resolution, generator=generator)
    tokens = torch.randint(1, 400, (2, 77), generator=generator)
    tokens[:, 10] = 49407  # EOT
    tokens[:, 11:] = 0
    return images, tokens


@pytest.mark.parametrize("arch, sizes, tower", [("vit", {}, VisionTransformer), ("rn", RN_TEST_SIZES, ModifiedResNet)])
def test_tiny_clip_round_trip_rebuilds_the_same_model(tmp_path, arch, sizes, tower):
    original = build_tiny_clip(arch, seed=3, **sizes)
    path = save_clip_state_dict(original, str(tmp_path / f"{arch}.pt"))
    loaded = load_clip(path)
    assert isinstance(loaded.visual, tower)
    assert loaded.dtype == torch.float16 and not loaded.training  # as clip.model.build_model builds it
    assert loaded.visual.input_resolution == 32 and loaded.context_length == 77
    loaded.float()
    images, tokens = _inputs()
    with torch.no_grad():
        # build_model casts weights to fp16: equal up to half-precision rounding
        torch.testing.assert_close(loaded.encode_image(images), original.encode_image(images), atol=5e-3, rtol=5e-3)
        torch.testing.assert_close(loaded.encode_text(tokens), original.encode_text(tokens), atol=5e-3, rtol=5e-3)


def test_same_seed_same_weights_and_global_rng_untouched():
    state = torch.random.get_rng_state()
    first, second = build_tiny_clip(seed=5), build_tiny_clip(seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    other = build_tiny_clip(seed=6)
    assert not torch.equal(first.token_embedding.weight, other.token_embedding.weight)


def test_widths_must_be_multiples_of_64():
    with pytest.raises(ValueError, match="multiple of 64"):
        build_tiny_clip(transformer_width=48)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
def test_torchscript_archive_is_accepted(tmp_path, tiny_vit_checkpoint):
    model = load_clip(tiny_vit_checkpoint).float()
    images, tokens = _inputs()
    archive = str(tmp_path / "traced.pt")
    torch.jit.save(torch.jit.trace(model, (images, tokens), check_trace=False), archive)
    loaded = load_clip(archive).float()
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_image(images), model.encode_image(images))


def test_state_dict_wrapped_in_a_checkpoint_dict_is_accepted(tmp_path, tiny_vit_checkpoint):
    weights = torch.load(tiny_vit_checkpoint, weights_only=True)
    path = str(tmp_path / "wrapped.pth")
    torch.save({"state_dict": {f"module.{k}": v for k, v in weights.items()}, "epoch": 3}, path)
    assert torch.equal(load_clip(path).text_projection, load_clip(tiny_vit_checkpoint).text_projection)


def test_openai_name_resolves_to_the_cache_folder(tmp_path, monkeypatch, tiny_vit_checkpoint):
    monkeypatch.setenv("GRAM_CLIP_CACHE", str(tmp_path))
    os.symlink(tiny_vit_checkpoint, tmp_path / "ViT-B-16.pt")
    assert load_clip("ViT-B/16").visual.input_resolution == 32
    assert checkpoint_fingerprint("ViT-B/16") == checkpoint_fingerprint(tiny_vit_checkpoint)


def test_missing_openai_weights_say_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAM_CLIP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GRAM_CLIP_OFFLINE", "1")
    with pytest.raises(CLIPCheckpointError) as caught:
        load_clip("RN50")
    message = str(caught.value)
    assert "\n" not in message
    assert "RN50.pt" in message and str(tmp_path / "cache") in message
    assert "https://openaipublic.azureedge.net" in message and "path" in message


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(CLIPCheckpointError, match="not found"):
        load_clip(str(tmp_path / "nowhere.pt"))


def test_non_clip_state_dict_names_file_and_missing_keys(tmp_path):
    path = str(tmp_path / "resnet.pth")
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(CLIPCheckpointError, match="resnet.pth is not a CLIP checkpoint: missing keys .*text_projection"):
        load_clip(path)


def test_garbage_file_is_not_a_clip_checkpoint(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(CLIPCheckpointError, match="notes.txt is not a CLIP checkpoint"):
        load_clip(str(path))


def test_fingerprint_follows_file_content(tmp_path):
    first = save_clip_state_dict(build_tiny_clip(seed=0), str(tmp_path / "a.pt"))
    second = save_clip_state_dict(build_tiny_clip(seed=1), str(tmp_path / "b.pt"))
    assert len(checkpoint_fingerprint(first)) == 16
    assert checkpoint_fingerprint(first) != checkpoint_fingerprint(second)


def test_ensure_tiny_clip_reuses_an_existing_file(tmp_path):
    path = str(tmp_path / "tiny.pt")
    ensure_tiny_clip(path, seed=0)
    stamp = os.stat(path).st_mtime_ns
    ensure_tiny_clip(path, seed=0)
    assert os.stat(path).st_mtime_ns == stamp
    assert [name for name in os.listdir(tmp_path) if name.startswith(".tmp")] == []


def test_load_clip_to_cpu_reads_the_backbone_name(tiny_rn_checkpoint):
    class Cfg:
        class MODEL:
            class BACKBONE:
                NAME = tiny_rn_checkpoint
    assert isinstance(load_clip_to_cpu(Cfg).visual, ModifiedResNet)
