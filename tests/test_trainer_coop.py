"""CoOp on a generated colour dataset with a tiny CLIP: what trains, that it learns, checkpoints,
precision fallback and the cached-feature fast path."""
import pytest
import torch
from dassl.utils import save_checkpoint

from helpers_clip import build_clip_trainer, record_losses
from trainers.backbone.precision import PrecisionFallbackWarning

CONFIG = "configs/trainers/CoOp/tiny_ep10.yaml"
EPOCHS = 4
QUIET = ["TRAIN.PRINT_FREQ", "1000"]


def frozen_weights(trainer):
    return {name: p.detach().clone() for name, p in trainer.model.named_parameters() if not p.requires_grad}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset_root, tiny_vit_checkpoint):
    output_dir = str(tmp_path_factory.mktemp("coop"))
    trainer = build_clip_trainer("CoOp", CONFIG, dataset_root, output_dir, tiny_vit_checkpoint,
                                 ["OPTIM.MAX_EPOCH", str(EPOCHS), "TEST.NO_TEST", "True", *QUIET])
    before = frozen_weights(trainer)
    ctx_before = trainer.model.prompt_learner.ctx.detach().clone()
    history = record_losses(trainer)
    trainer.train()
    return {"trainer": trainer, "before": before, "ctx_before": ctx_before, "history": history, "output_dir": output_dir}


def test_only_the_prompt_context_trains_and_clip_is_unchanged(trained):
    trainer = trained["trainer"]
    assert list(trainer.prompt_parameters()) == ["prompt_learner.ctx"]
    after = frozen_weights(trainer)
    assert after.keys() == trained["before"].keys() and len(after) > 10
    assert all(torch.equal(after[name], trained["before"][name]) for name in after)
    assert not torch.equal(trainer.model.prompt_learner.ctx, trained["ctx_before"])


def test_training_loss_falls(trained):
    epoch_means = [sum(losses) / len(losses) for losses in trained["history"]]
    assert len(epoch_means) == EPOCHS
    assert epoch_means[-1] < 0.9 * epoch_means[0]


def test_evaluation_prints_result_lines_and_reload_reproduces_accuracy(trained, capsys, dataset_root,
                                                                       tiny_vit_checkpoint, tmp_path):
    accuracy = trained["trainer"].test()
    printed = capsys.readouterr().out
    for line in ("=> result", "* total: 16", "* correct:", "* accuracy:", "* error:", "* macro_f1:"):
        assert line in printed
    assert accuracy > 25.0  # four classes: above chance
    reloaded = build_clip_trainer("CoOp", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint, QUIET)
    reloaded.load_model(trained["output_dir"], epoch=EPOCHS)
    assert torch.equal(reloaded.model.prompt_learner.ctx, trained["trainer"].model.prompt_learner.ctx)
    assert reloaded.test() == accuracy


def test_upstream_checkpoints_with_prompt_token_buffers_load(trained, dataset_root, tiny_vit_checkpoint, tmp_path):
    learner = trained["trainer"].model.prompt_learner
    state = {"ctx": learner.ctx.detach(), "token_prefix": learner.token_prefix, "token_suffix": learner.token_suffix}
    save_checkpoint({"state_dict": state, "epoch": 1, "optimizer": None, "scheduler": None},
                    str(tmp_path / "upstream" / "prompt_learner"))
    trainer = build_clip_trainer("CoOp", CONFIG, dataset_root, str(tmp_path / "out"), tiny_vit_checkpoint, QUIET)
    trainer.load_model(str(tmp_path / "upstream"), epoch=1)
    assert torch.equal(trainer.model.prompt_learner.ctx, learner.ctx)


def test_checkpoint_of_another_model_is_a_clear_error(trained, dataset_root, tiny_vit_checkpoint, tmp_path):
    trainer = build_clip_trainer("CoOp", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint,
                                 ["TRAINER.COOP.CSC", "True", *QUIET])
    with pytest.raises(ValueError, match=r"model.pth.tar-4 does not fit prompt_learner of CoOp"):
        trainer.load_model(trained["output_dir"], epoch=EPOCHS)


def test_class_specific_context_in_the_middle_trains(dataset_root, tiny_vit_checkpoint, tmp_path):
    trainer = build_clip_trainer("CoOp", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint,
                                 ["TRAINER.COOP.CSC", "True", "TRAINER.COOP.CLASS_TOKEN_POSITION", "middle", *QUIET])
    ctx = trainer.model.prompt_learner.ctx
    assert ctx.shape == (4, 4, 64)
    before = ctx.detach().clone()
    trainer.num_batches = 1
    summary = trainer.forward_backward(next(iter(trainer.train_loader_x)))
    assert summary["loss"] > 0 and not torch.equal(ctx, before)


def test_fp16_on_cpu_falls_back_to_fp32_with_a_warning(dataset_root, tiny_vit_checkpoint, tmp_path):
    with pytest.warns(PrecisionFallbackWarning, match="fp16"):
        trainer = build_clip_trainer("CoOp", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint,
                                     ["TRAINER.COOP.PREC", "fp16", *QUIET])
    assert trainer.precision == "fp32"
    assert trainer.model.prompt_learner.ctx.dtype == torch.float32 and trainer.model.dtype == torch.float32


def test_cached_fast_path_serves_the_slow_path_features_and_trains(dataset_root, tiny_vit_checkpoint, tmp_path):
    trainer = build_clip_trainer("CoOp", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint,
                                 ["TRAINER.COOP.CACHE_IMAGE_FEATURES", "True", "TRAINER.COOP.CACHE_VIEWS", "2",
                                  "INPUT.TRANSFORMS", "['normalize']", *QUIET])
    slow_batches = list(trainer.train_loader_x)
    trainer.before_train()
    cache = trainer.train_loader_x
    assert cache.features.shape == (2, 32, 64) and len(cache) == len(slow_batches)
    with torch.no_grad():
        for batch in slow_batches:
            expected = trainer.model.encode_images(batch["img"])
            torch.testing.assert_close(cache.features[0, batch["index"]], expected)
            torch.testing.assert_close(cache.features[1, batch["index"]], expected)
    ctx_before = trainer.model.prompt_learner.ctx.detach().clone()
    trainer.before_epoch()
    trainer.run_epoch()
    assert not torch.equal(trainer.model.prompt_learner.ctx, ctx_before)


def test_eval_text_features_are_reused_until_the_prompts_change(tiny_vit_checkpoint):
    from trainers.backbone.clip_loader import load_clip
    from trainers.backbone.prompt_learner import PromptLearner
    from trainers.backbone.prompt_trainer import PromptCLIP

    clip_model = load_clip(tiny_vit_checkpoint).float()
    model = PromptCLIP(clip_model, PromptLearner(clip_model, ["red", "green"], n_ctx=4))
    with torch.no_grad():
        first = model.class_text_features()
        assert model.class_text_features() is first
        model.prompt_learner.ctx.data.add_(0.5)  # a write that bypasses the version counter
        second = model.class_text_features()
    assert not torch.equal(first, second)
    torch.testing.assert_close(second, model.class_text_features().detach())  # with autograd: same values
