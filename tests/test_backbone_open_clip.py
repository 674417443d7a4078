"""open_clip backbones: ``MODEL.BACKBONE.NAME open_clip:<model>[@<pretrained>]`` through OpenAI's CLIP module.

Models are randomly initialised open_clip models (no download) at tiny sizes, described by model-config
JSON files in open_clip's format. The converted module must give open_clip's own features, and every
trainer, GRAM variant, the clustering stage and meta-training must run on it.
"""
import json
import os
import sys

import clip
import pytest
import torch

from helpers_clip import build_clip_trainer, record_losses
from helpers_gram import cluster_caption_corpus, run_meta_training
from trainers.backbone.clip_loader import CLIPCheckpointError, checkpoint_fingerprint, load_clip
from trainers.backbone.open_clip_backbone import build_open_clip_model, parse_open_clip_name, to_openai_clip

open_clip = pytest.importorskip("open_clip")

TEXT = {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}
CONFIGS = {
    "tiny-oc-vit": {"embed_dim": 64, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
                    "text_cfg": TEXT},
    "tiny-oc-vit-quickgelu": {"embed_dim": 64, "quick_gelu": True, "text_cfg": TEXT,
                              "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8,
                                             "head_width": 32}},
    "tiny-oc-rn": {"embed_dim": 64, "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 32},
                   "text_cfg": TEXT},
    "tiny-oc-layerscale": {"embed_dim": 64, "text_cfg": TEXT,
                           "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8,
                                          "ls_init_value": 1e-5}},
}
QUIET = ["TRAIN.PRINT_FREQ", "1000"]


@pytest.fixture(scope="session")
def open_clip_configs(tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / "open_clip_configs"
    folder.mkdir(exist_ok=True)
    paths = {}
    for name, config in CONFIGS.items():
        paths[name] = str(folder / f"{name}.json")
        with open(paths[name], "w") as file:
            json.dump(config, file)
    return paths


@pytest.fixture(scope="session")
def open_clip_vit(open_clip_configs):
    return f"open_clip:{open_clip_configs['tiny-oc-vit']}"


@pytest.mark.parametrize("config", ["tiny-oc-vit", "tiny-oc-vit-quickgelu", "tiny-oc-rn"])
def test_converted_model_gives_open_clips_features(open_clip_configs, config):
    spec = parse_open_clip_name(f"open_clip:{open_clip_configs[config]}")
    source = build_open_clip_model(spec).eval()
    model = to_openai_clip(source, spec).eval()
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    tokens = clip.tokenize(["a photo of a cat", "a red square", "dog"])
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(images), source.encode_image(images))
        torch.testing.assert_close(model.encode_text(tokens), source.encode_text(tokens))
    activation = type(model.transformer.resblocks[0].mlp.gelu).__name__
    assert activation == ("QuickGELU" if "quickgelu" in config else "GELU")


def test_load_clip_builds_the_same_fp16_model_every_time_without_touching_the_global_rng(open_clip_vit):
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    first = load_clip(open_clip_vit)
    assert torch.equal(torch.rand(2), expected)
    again = load_clip(open_clip_vit)
    assert first.dtype == torch.float16 and not first.training
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    assert checkpoint_fingerprint(open_clip_vit) == checkpoint_fingerprint(open_clip_vit)


def test_weights_file_tag_loads_those_weights_and_changes_the_fingerprint(open_clip_configs, open_clip_vit, tmp_path):
    spec = parse_open_clip_name(open_clip_vit)
    source = build_open_clip_model(spec)
    with torch.no_grad():
        source.text_projection.mul_(2.0)
    weights = str(tmp_path / "weights.pt")
    torch.save(source.state_dict(), weights)
    model = load_clip(f"{open_clip_vit}@{weights}")
    torch.testing.assert_close(model.text_projection.float(), source.text_projection.half().float())
    assert checkpoint_fingerprint(f"{open_clip_vit}@{weights}") != checkpoint_fingerprint(open_clip_vit)


@pytest.mark.parametrize("name,message", [
    ("layerscale", "its weights do not map onto OpenAI's CLIP (extra keys visual.transformer.resblocks.0.ls_1.gamma"),
    ("open_clip:No-Such-Model", "open_clip:No-Such-Model: 'No-Such-Model' is not an open_clip model name"),
    ("open_clip:ViT-B-16@no_such_tag", "open_clip:ViT-B-16@no_such_tag: open_clip could not build it ("),
    ("open_clip:/nowhere/tiny.json", "open_clip:/nowhere/tiny.json: model config /nowhere/tiny.json does not exist"),
])
def test_unusable_open_clip_names_are_refused_in_one_line(open_clip_configs, name, message):
    if name == "layerscale":
        name = f"open_clip:{open_clip_configs['tiny-oc-layerscale']}"
    with pytest.raises(CLIPCheckpointError) as error:
        load_clip(name)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_missing_open_clip_says_how_to_install_it(open_clip_vit, monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(CLIPCheckpointError, match=r"need open_clip_torch: pip install open_clip_torch"):
        load_clip(open_clip_vit)


TRAINERS = [  # every trainer, on its tiny config
    ("ZeroshotCLIP", "configs/trainers/ZeroshotCLIP/tiny.yaml"),
    ("CoOp", "configs/trainers/CoOp/tiny_ep10.yaml"),
    ("CoOp", "configs/trainers/CoOp/tiny_ep10_cached.yaml"),  # image-feature cache
    ("CoCoOp", "configs/trainers/CoCoOp/tiny_c4_ep5_batch4.yaml"),
    ("KgCoOp", "configs/trainers/KgCoOp/tiny_ep6.yaml"),
    ("VPT", "configs/trainers/VPT/tiny_ep5_batch8_4.yaml"),
    ("MaPLe", "configs/trainers/MaPLe/tiny_ep5_batch8_2ctx.yaml"),
    ("ProMetaR", "configs/trainers/ProMetaR/tiny_ep5_batch8_4+4ctx.yaml"),
    ("TPT", "configs/trainers/TPT/tiny.yaml"),
]


def train_and_test(trainer_name, config, root, output_dir, backbone, opts=()):
    trainer = build_clip_trainer(trainer_name, config, root, output_dir, backbone,
                                 ["OPTIM.MAX_EPOCH", 1, "TEST.NO_TEST", True, *QUIET, *opts])
    history = record_losses(trainer)
    if trainer_name != "ZeroshotCLIP" and not trainer_name.startswith("TPT"):  # test-time only
        trainer.train()
        losses = [loss for epoch in history for loss in epoch]
        assert losses and all(torch.isfinite(torch.tensor(losses)))
    accuracy = trainer.test()
    assert 0.0 <= accuracy <= 100.0
    return trainer


@pytest.mark.parametrize("trainer_name,config", TRAINERS, ids=[os.path.basename(c) for _, c in TRAINERS])
def test_every_trainer_trains_and_evaluates_on_an_open_clip_backbone(trainer_name, config, dataset_root,
                                                                     open_clip_vit, tmp_path):
    train_and_test(trainer_name, config, dataset_root, str(tmp_path), open_clip_vit)


@pytest.fixture(scope="module")
def open_clip_split(open_clip_vit, tmp_path_factory):
    """The clustering stage's split of the tiny corpus, encoded with the open_clip backbone."""
    return cluster_caption_corpus(str(tmp_path_factory.mktemp("open_clip_corpus")), open_clip_vit)


GRAM_VARIANTS = [  # (GRAM trainer, its baseline's tiny config, meta config, extra meta options)
    ("CoOp_GRAM", "configs/trainers/CoOp/tiny_ep10.yaml", "tiny_coop", []),
    ("KgCoOp_GRAM", "configs/trainers/KgCoOp/tiny_ep6.yaml", "tiny_coop", []),
    ("TPT_GRAM", "configs/trainers/TPT/tiny.yaml", "tiny_coop",
     ["TRAINER.GRAM.TTA", True, "TRAINER.GRAM.TTA_ITERS", 1, "TRAINER.GRAM.TTA_IMAGES", 2]),
    ("CoCoOp_GRAM", "configs/trainers/CoCoOp/tiny_c4_ep5_batch4.yaml", "tiny_cocoop", []),
    ("VPT_GRAM", "configs/trainers/VPT/tiny_ep5_batch8_4.yaml", "tiny_vpt", []),
    ("MaPLe_GRAM", "configs/trainers/MaPLe/tiny_ep5_batch8_2ctx.yaml", "tiny_maple", []),
]


@pytest.mark.parametrize("trainer_name,config,meta_config,meta_opts", GRAM_VARIANTS, ids=[v[0] for v in GRAM_VARIANTS])
def test_every_gram_variant_meta_trains_and_tunes_on_an_open_clip_backbone(
        trainer_name, config, meta_config, meta_opts, open_clip_split, dataset_root, open_clip_vit, tmp_path):
    split_file, manifest = open_clip_split
    meta_dir = str(tmp_path / "meta")
    run_meta_training(split_file, open_clip_vit, meta_dir,
                      ["TRAINER.GRAM.CORPUS", manifest, "OPTIM.MAX_EPOCH", 1, "TRAINER.GRAM.ITERS_PER_EPOCH", 1,
                       *meta_opts], config_file=f"configs/gram/{meta_config}.yaml")
    meta_checkpoint = os.path.join(meta_dir, "meta_checkpoint.pth")
    trainer = train_and_test(trainer_name, config, dataset_root, str(tmp_path / "tune"), open_clip_vit,
                             ["TRAINER.GRAM.META_CKPT", meta_checkpoint])
    assert trainer.cfg.TRAINER.GRAM.META_CKPT == meta_checkpoint


def test_clustering_stage_cli_runs_on_an_open_clip_backbone(open_clip_vit, tmp_path):
    import cluster
    from datasets.fixtures import build_corpus_fixture
    from clustering import load_split

    corpus = build_corpus_fixture(str(tmp_path / "corpus"), n=24, fmt="tsv", n_corrupt=0)
    assert cluster.main(["--corpus", corpus.source, "--clip", open_clip_vit, "--out", str(tmp_path / "split"),
                         "--method", "kmeans", "--k", "4", "--batch-size", "16", "--shard-size", "16"]) == 0
    split = load_split(str(tmp_path / "split"), expected_clip_fingerprint=checkpoint_fingerprint(open_clip_vit))
    assert split.num_pairs == 24 and [level.num_clusters for level in split.levels] == [4]
