"""Every registered prompt trainer builds outside the data pipeline, meta-trains, and its _GRAM variant
trains from that meta checkpoint (the class-level builder shared by training and meta-training)."""
import os

import pytest
import torch

from helpers_clip import REPO, TINY_CONFIGS, build_clip_trainer
from helpers_gram import write_fresh_meta_checkpoint

import trainers  # noqa: F401  (registers the trainers)
from dassl.engine import TRAINER_REGISTRY
from trainers.backbone.prompt_trainer import PromptTrainer
from trainers.gram.meta_checkpoint import load_meta_checkpoint


def registered_prompt_trainers() -> list:
    return sorted(name for name in TRAINER_REGISTRY.registered_names()
                  if not name.endswith("_GRAM") and issubclass(TRAINER_REGISTRY.get(name), PromptTrainer))


def test_every_registered_prompt_trainer_has_a_tiny_config_and_a_gram_variant():
    names = registered_prompt_trainers()
    assert names == sorted(TINY_CONFIGS)
    assert all(f"{name}_GRAM" in TRAINER_REGISTRY.registered_names() for name in names)


def meta_train(method: str, split_file: str, manifest: str, backbone: str, output_dir: str) -> str:
    """Two outer steps of GRAM meta-training of ``method``'s prompts (its tiny recipe's prompt shapes)."""
    from dassl.utils import set_random_seed

    from tools.cli import default_cfg
    from trainers.gram.meta_trainer import MetaTrainer

    cfg = default_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs/gram/tiny_coop.yaml"))
    cfg.merge_from_file(os.path.join(REPO, TINY_CONFIGS[method]))
    cfg.merge_from_list([
        "MODEL.BACKBONE.NAME", backbone, "TRAINER.GRAM.SPLIT_FILE", split_file, "TRAINER.GRAM.CORPUS", manifest,
        "TRAINER.GRAM.METHOD", method, "OUTPUT_DIR", output_dir, "SEED", 1, "OPTIM.MAX_EPOCH", 1,
        "OPTIM.LR_SCHEDULER", "cosine", "OPTIM.WARMUP_EPOCH", -1, "TRAINER.GRAM.ITERS_PER_EPOCH", 2,
        "TRAINER.GRAM.META_BATCH", 1, "TRAINER.GRAM.VAL_TASKS", 1, "TRAINER.GRAM.SUPPORT_SIZE", 4,
        "TRAINER.GRAM.QUERY_SIZE", 4, "TRAINER.GRAM.TTA", method == "TPT", "TRAINER.GRAM.TTA_ITERS", 1,
        "TRAINER.GRAM.TTA_IMAGES", 1])
    cfg.freeze()
    set_random_seed(1)
    meta = MetaTrainer(cfg)
    meta.train()
    return os.path.join(output_dir, "meta_checkpoint.pth")


@pytest.mark.parametrize("method", sorted(TINY_CONFIGS))
def test_prompt_trainer_builds_meta_trains_and_its_gram_variant_trains_from_the_checkpoint(
        method, gram_split, dataset_root, tiny_vit_checkpoint, tmp_path):
    from tools.cli import default_cfg
    from trainers.backbone.clip_loader import load_clip

    cfg = default_cfg()
    cfg.merge_from_file(os.path.join(REPO, TINY_CONFIGS[method]))
    model = TRAINER_REGISTRY.get(method).build_prompt_model(cfg, load_clip(tiny_vit_checkpoint).float(), ["a", "b"])
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(name.startswith("prompt_learner.") for name in trainable)

    split_file, manifest = gram_split
    path = meta_train(method, split_file, manifest, tiny_vit_checkpoint, str(tmp_path / "meta"))
    checkpoint = load_meta_checkpoint(path)
    assert sorted(checkpoint.prompt_init) == sorted(trainable)

    trainer = build_clip_trainer(f"{method}_GRAM", TINY_CONFIGS[method], dataset_root, str(tmp_path / "tune"),
                                 tiny_vit_checkpoint, ["TRAINER.GRAM.META_CKPT", path, "OPTIM.MAX_EPOCH", 1,
                                                       "TRAIN.CHECKPOINT_FREQ", 0])
    prompts = {n: p for n, p in trainer.model.named_parameters() if p.requires_grad}
    for name, param in prompts.items():
        torch.testing.assert_close(param.detach(), checkpoint.prompt_init[name].to(param.dtype), msg=name)
    losses = []
    step = trainer.forward_backward
    trainer.forward_backward = lambda batch: losses.append(step(batch)["loss"]) or {"loss": losses[-1]}
    if method == "TPT":  # test-time tuning: no training ahead of time, each test image is tuned on
        assert 0.0 <= trainer.test() <= 100.0
        return
    trainer.train()
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    assert any(not torch.equal(p.detach(), checkpoint.prompt_init[n].to(p.dtype)) for n, p in prompts.items())


def test_a_meta_checkpoint_of_a_deeper_prompt_is_refused_in_one_line_naming_both(dataset_root, tiny_vit_checkpoint,
                                                                                  tmp_path):
    """The old check accepted this silently: every tensor of the depth-1 model is in the depth-2 checkpoint."""
    from trainers.gram.meta_checkpoint import MetaCheckpointError

    deep = build_clip_trainer("MaPLe", TINY_CONFIGS["MaPLe"], dataset_root, str(tmp_path / "deep"), tiny_vit_checkpoint)
    prompts = dict(deep.prompt_parameters())
    path = write_fresh_meta_checkpoint("MaPLe", prompts, tiny_vit_checkpoint, str(tmp_path / "meta_checkpoint.pth"))
    for depth, only_in_checkpoint in (("1", "deep_text.0"), ("2", None)):
        opts = ["TRAINER.GRAM.META_CKPT", path, "TRAINER.MAPLE.PROMPT_DEPTH", depth]
        if only_in_checkpoint is None:  # the other way: the model has a tensor the checkpoint lacks
            shrunk = {n: t for n, t in prompts.items() if "compound_prompt_projections.0.bias" not in n}
            write_fresh_meta_checkpoint("MaPLe", shrunk, tiny_vit_checkpoint, path)
        with pytest.raises(MetaCheckpointError) as caught:
            build_clip_trainer("MaPLe_GRAM", TINY_CONFIGS["MaPLe"], dataset_root, str(tmp_path / depth),
                               tiny_vit_checkpoint, opts)
        message = str(caught.value)
        assert "\n" not in message and path in message and "MaPLe_GRAM" in message
        if only_in_checkpoint:
            assert f"the meta checkpoint has prompt_learner.{only_in_checkpoint} [" in message
        else:
            assert "the model has prompt_learner.compound_prompt_projections.0.bias [" in message
