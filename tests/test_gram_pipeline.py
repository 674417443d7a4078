"""GRAM end to end at tiny size: clustered corpus -> meta-training -> meta checkpoint -> CoOp_GRAM."""
import os

import pytest
import torch

from helpers_clip import build_clip_trainer
from helpers_gram import REPO, build_meta_trainer, run_meta_training
from trainers.gram.meta_checkpoint import MetaCheckpointError, load_meta_checkpoint

TINY_COOP = "configs/trainers/CoOp/tiny_ep10.yaml"


@pytest.fixture(scope="module")
def meta_run(gram_split, tiny_vit_checkpoint, tmp_path_factory):
    split_file, _ = gram_split
    output = str(tmp_path_factory.mktemp("meta"))
    trainer = run_meta_training(split_file, tiny_vit_checkpoint, output)
    return trainer, os.path.join(output, "meta_checkpoint.pth")


def test_meta_training_writes_a_checkpoint_for_the_prompt_method(meta_run):
    trainer, path = meta_run
    checkpoint = load_meta_checkpoint(path)
    assert checkpoint.method == "CoOp"
    assert set(checkpoint.prompt_init) == {"prompt_learner.ctx"}
    torch.testing.assert_close(checkpoint.prompt_init["prompt_learner.ctx"],
                               trainer.prompt_params["prompt_learner.ctx"].detach())
    regulator = checkpoint.build_regulator()
    assert not any(p.requires_grad for p in regulator.parameters())


def test_meta_training_lowers_the_adapted_query_loss_of_held_out_tasks(gram_split, tiny_vit_checkpoint, tmp_path):
    split_file, _ = gram_split
    trainer = run_meta_training(split_file, tiny_vit_checkpoint, str(tmp_path), [
        "OPTIM.MAX_EPOCH", 3, "TRAINER.GRAM.ITERS_PER_EPOCH", 8, "TRAINER.GRAM.META_BATCH", 2,
        "TRAINER.GRAM.VAL_TASKS", 4, "OPTIM.LR", 0.01, "TRAINER.GRAM.INNER_LR", 0.02, "TRAINER.GRAM.MIXUP_ALPHA", 0.0])
    history = [v["query_loss_after_adaptation"] for v in trainer.validation_history]
    assert history[-1] < history[0] - 0.02, history


def test_resumed_meta_training_reproduces_the_uninterrupted_run(gram_split, tiny_vit_checkpoint, tmp_path):
    split_file, _ = gram_split
    full = run_meta_training(split_file, tiny_vit_checkpoint, str(tmp_path / "full"))
    interrupted = build_meta_trainer(split_file, tiny_vit_checkpoint, str(tmp_path / "cut"))
    run_epoch = interrupted.run_epoch

    def run_epoch_until_interrupt():
        if interrupted.epoch == 1:
            raise KeyboardInterrupt
        run_epoch()

    interrupted.run_epoch = run_epoch_until_interrupt
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()
    resumed = run_meta_training(split_file, tiny_vit_checkpoint, str(tmp_path / "cut"))
    assert resumed.start_epoch == 1
    for name, param in full.state.state_dict().items():
        torch.testing.assert_close(resumed.state.state_dict()[name], param, msg=name)


def test_coop_gram_starts_from_the_meta_learned_context(meta_run, dataset_root, tiny_vit_checkpoint, tmp_path):
    _, path = meta_run
    trainer = build_clip_trainer("CoOp_GRAM", TINY_COOP, dataset_root, str(tmp_path), tiny_vit_checkpoint,
                                 ["TRAINER.GRAM.META_CKPT", path])
    torch.testing.assert_close(trainer.model.prompt_learner.ctx.detach(),
                               load_meta_checkpoint(path).prompt_init["prompt_learner.ctx"])


def test_meta_checkpoint_from_another_clip_is_refused(meta_run, dataset_root, tiny_rn_checkpoint, tmp_path):
    _, path = meta_run
    with pytest.raises(MetaCheckpointError, match="fingerprint"):
        build_clip_trainer("CoOp_GRAM", TINY_COOP, dataset_root, str(tmp_path), tiny_rn_checkpoint,
                           ["TRAINER.GRAM.META_CKPT", path])


def test_meta_checkpoint_for_another_prompt_shape_is_refused(meta_run, dataset_root, tiny_vit_checkpoint, tmp_path):
    _, path = meta_run
    with pytest.raises(MetaCheckpointError, match="shape"):
        build_clip_trainer("CoOp_GRAM", TINY_COOP, dataset_root, str(tmp_path), tiny_vit_checkpoint,
                           ["TRAINER.GRAM.META_CKPT", path, "TRAINER.COOP.N_CTX", 6])


@pytest.mark.parametrize("regulator_kind", ["identity", "lowrank"])
def test_gram_trainer_with_identity_psi_trains_exactly_like_its_baseline(regulator_kind, dataset_root,
                                                                          tiny_vit_checkpoint, tmp_path):
    """psi = identity (or a fresh low-rank psi, which starts as the identity) and the baseline's own
    init: CoOp_GRAM's losses and final context equal CoOp's step for step."""
    from helpers_clip import record_losses
    from trainers.backbone.clip_loader import checkpoint_fingerprint
    from trainers.gram.meta_checkpoint import MetaCheckpoint, save_meta_checkpoint
    from trainers.gram.regulator import build_regulator

    opts = ["OPTIM.MAX_EPOCH", 2]
    baseline = build_clip_trainer("CoOp", TINY_COOP, dataset_root, str(tmp_path / "coop"), tiny_vit_checkpoint, opts)
    ctx = baseline.model.prompt_learner.ctx
    regulator = build_regulator(regulator_kind, {"prompt_learner.ctx": tuple(ctx.shape)})
    checkpoint = MetaCheckpoint(method="CoOp", prompt_init={"prompt_learner.ctx": ctx.detach().clone()},
                                regulator_config=regulator.config(), regulator_state=regulator.state_dict(),
                                clip_fingerprint=checkpoint_fingerprint(tiny_vit_checkpoint),
                                backbone=tiny_vit_checkpoint)
    path = str(tmp_path / "identity_meta.pth")
    save_meta_checkpoint(checkpoint, path)
    baseline_losses = record_losses(baseline)
    baseline.train()
    gram = build_clip_trainer("CoOp_GRAM", TINY_COOP, dataset_root, str(tmp_path / "gram"), tiny_vit_checkpoint,
                              opts + ["TRAINER.GRAM.META_CKPT", path])
    gram_losses = record_losses(gram)
    gram.train()
    exact = regulator_kind == "identity"  # a fresh low-rank psi is the identity up to float rounding
    tolerance = {"rtol": 0, "atol": 0} if exact else {"rtol": 1e-4, "atol": 1e-6}
    torch.testing.assert_close(torch.tensor(gram_losses), torch.tensor(baseline_losses), **tolerance)
    torch.testing.assert_close(gram.model.prompt_learner.ctx, baseline.model.prompt_learner.ctx, **tolerance)


def test_meta_learned_regulator_changes_the_fine_tuning_steps(meta_run, dataset_root, tiny_vit_checkpoint, tmp_path):
    from dassl.utils import set_random_seed

    _, path = meta_run
    runs = {}
    for regulate in (True, False):
        set_random_seed(1)
        trainer = build_clip_trainer("CoOp_GRAM", TINY_COOP, dataset_root, str(tmp_path / str(regulate)),
                                     tiny_vit_checkpoint, ["TRAINER.GRAM.META_CKPT", path, "OPTIM.MAX_EPOCH", 1,
                                                           "TRAINER.GRAM.REGULATE", regulate])
        trainer.train()
        runs[regulate] = trainer.model.prompt_learner.ctx.detach().clone()
    assert not torch.allclose(runs[True], runs[False])


GRAM_VARIANTS = [
    # (GRAM trainer, its baseline's tiny config, tiny meta config)
    ("CoCoOp_GRAM", "configs/trainers/CoCoOp/tiny_c4_ep5_batch4.yaml", "configs/gram/tiny_cocoop.yaml"),
    ("VPT_GRAM", "configs/trainers/VPT/tiny_ep5_batch8_4.yaml", "configs/gram/tiny_vpt.yaml"),
    ("MaPLe_GRAM", "configs/trainers/MaPLe/tiny_ep5_batch8_2ctx.yaml", "configs/gram/tiny_maple.yaml"),
]


@pytest.mark.parametrize("trainer_name,trainer_config,meta_config", GRAM_VARIANTS, ids=[v[0] for v in GRAM_VARIANTS])
def test_each_gram_variant_meta_trains_and_starts_from_its_meta_checkpoint(
        trainer_name, trainer_config, meta_config, gram_split, dataset_root, tiny_vit_checkpoint, tmp_path):
    from dassl.utils import set_random_seed

    from tools.cli import default_cfg
    from trainers.gram.meta_trainer import MetaTrainer

    split_file, manifest = gram_split
    cfg = default_cfg()
    cfg.merge_from_file(os.path.join(REPO, meta_config))
    cfg.merge_from_list(["MODEL.BACKBONE.NAME", tiny_vit_checkpoint, "TRAINER.GRAM.SPLIT_FILE", split_file,
                         "TRAINER.GRAM.CORPUS", manifest, "OUTPUT_DIR", str(tmp_path / "meta"), "SEED", 1,
                         "OPTIM.MAX_EPOCH", 1, "TRAINER.GRAM.ITERS_PER_EPOCH", 1, "TRAINER.GRAM.META_BATCH", 1,
                         "TRAINER.GRAM.VAL_TASKS", 1])
    cfg.freeze()
    set_random_seed(1)
    meta = MetaTrainer(cfg)
    meta.train()
    checkpoint = load_meta_checkpoint(str(tmp_path / "meta" / "meta_checkpoint.pth"))
    trainer = build_clip_trainer(trainer_name, trainer_config, dataset_root, str(tmp_path / "tune"), tiny_vit_checkpoint,
                                 ["TRAINER.GRAM.META_CKPT", str(tmp_path / "meta" / "meta_checkpoint.pth")])
    prompts = {n: p for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert set(prompts) == set(checkpoint.prompt_init)
    for name, param in prompts.items():
        torch.testing.assert_close(param.detach(), checkpoint.prompt_init[name].expand_as(param), msg=name)
