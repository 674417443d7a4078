"""Precision and learning-rate details of the GPU path follow each reference implementation
(TPT, MaPLe, VPT, ProMetaR), tested on the CPU with the GPU path's dtypes (the ``honour_precision_on_cpu`` fixture)."""
import pytest
import torch

from helpers_clip import build_clip_trainer
from trainers.backbone.precision import PrecisionFallbackWarning

TPT_CONFIG = "configs/trainers/TPT/tiny.yaml"
PROMETAR_CONFIG = "configs/trainers/ProMetaR/tiny_ep5_batch8_4+4ctx.yaml"
QUIET = ["TRAIN.CHECKPOINT_FREQ", "0"]


def tpt_predictions(trainer, views: torch.Tensor) -> torch.Tensor:
    tuner = trainer.build_tuner()
    return torch.cat([tuner.predict(views[i]) for i in range(views.shape[0])]).softmax(dim=-1)


def test_tpt_in_fp16_keeps_prompt_and_adamw_state_in_fp32_and_predicts_like_fp32(
        honour_precision_on_cpu, dataset_root, tiny_vit_checkpoint, tmp_path):
    views = torch.randn(3, 16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    half = build_clip_trainer("TPT", TPT_CONFIG, dataset_root, str(tmp_path / "fp16"), tiny_vit_checkpoint,
                              ["TRAINER.TPT.PREC", "fp16"])
    full = build_clip_trainer("TPT", TPT_CONFIG, dataset_root, str(tmp_path / "fp32"), tiny_vit_checkpoint)
    assert half.model.image_encoder.dtype == torch.float16 and half.model.prompt_learner.ctx.dtype == torch.float32
    half_predictions = tpt_predictions(half, views)
    tuner = half.build_tuner()
    tuner.reset = lambda: None  # keep AdamW's state after its step
    tuner.predict(views[0])
    moments = [state for s in tuner.optimizer.state.values() for key, state in s.items() if key != "step"]
    assert moments and all(moment.dtype == torch.float32 and torch.isfinite(moment).all() for moment in moments)
    assert torch.isfinite(half_predictions).all()
    torch.testing.assert_close(half_predictions, tpt_predictions(full, views), atol=0.03, rtol=0)


def test_deep_prompt_dtypes_follow_each_reference(honour_precision_on_cpu, dataset_root, tiny_vit_checkpoint,
                                                  tmp_path):
    maple = build_clip_trainer("MaPLe", "configs/trainers/MaPLe/tiny_ep5_batch8_2ctx.yaml", dataset_root,
                               str(tmp_path / "maple"), tiny_vit_checkpoint, ["TRAINER.MAPLE.PREC", "fp16"])
    dtypes = {name: p.dtype for name, p in maple.prompt_parameters().items()}
    half = {n for n, d in dtypes.items() if d == torch.float16}
    assert half == {"prompt_learner.ctx", "prompt_learner.proj.weight", "prompt_learner.proj.bias"}
    assert any("deep_text" in n for n in dtypes) and any("compound_prompt_projections" in n for n in dtypes)

    prometar = build_clip_trainer("ProMetaR", PROMETAR_CONFIG, dataset_root, str(tmp_path / "prometar"),
                                  tiny_vit_checkpoint, ["TRAINER.PROMETAR.PREC", "fp16"])
    dtypes = {name: p.dtype for name, p in prometar.prompt_parameters().items()}
    assert {n for n, d in dtypes.items() if d == torch.float16} == {"prompt_learner.ctx"}

    vpt = build_clip_trainer("VPT", "configs/trainers/VPT/tiny_ep5_batch8_4.yaml", dataset_root,
                             str(tmp_path / "vpt"), tiny_vit_checkpoint, ["TRAINER.VPT.PREC", "fp16"])
    assert vpt.precision == "fp32"
    assert {p.dtype for p in vpt.model.parameters()} == {torch.float32}

    for trainer in (maple, prometar, vpt):
        batch = next(iter(trainer.train_loader_x))
        trainer.batch_idx, trainer.num_batches = 0, 2
        assert torch.isfinite(torch.tensor(trainer.forward_backward(batch)["loss"]))


@pytest.mark.parametrize("schedule,expected", [("reference", [1e-6, 1e-6, 1e-6]), ("stepped", None)])
def test_prometar_vnet_learning_rate_follows_the_reference_unless_stepped(schedule, expected, dataset_root,
                                                                          tiny_vit_checkpoint, tmp_path):
    trainer = build_clip_trainer("ProMetaR", PROMETAR_CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint,
                                 ["TRAINER.PROMETAR.VNET_LR_SCHEDULE", schedule, *QUIET])
    rates = []
    for _ in range(3):
        rates.append(trainer.optim_vnet.param_groups[0]["lr"])
        trainer.update_lr()
    if expected is not None:
        assert rates == pytest.approx(expected)
    else:
        assert rates[0] == pytest.approx(1e-6) and rates[1] == pytest.approx(trainer.cfg.OPTIM_VNET.LR)
        assert rates[2] < rates[1]


def test_a_prec_the_device_cannot_honour_falls_back_with_one_line_naming_the_key(
        dataset_root, tiny_vit_checkpoint, tmp_path, capsys):
    with pytest.warns(PrecisionFallbackWarning) as caught:
        trainer = build_clip_trainer("MaPLe", "configs/trainers/MaPLe/tiny_ep5_batch8_2ctx.yaml", dataset_root,
                                     str(tmp_path), tiny_vit_checkpoint, ["TRAINER.MAPLE.PREC", "amp"])
    assert trainer.precision == "fp32"
    message = str(caught[0].message)
    assert "\n" not in message and message.startswith("TRAINER.MAPLE.PREC=amp cannot be honoured on cpu")
    assert message in capsys.readouterr().out
