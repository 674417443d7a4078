"""Every trainer and GRAM variant at CLIP ViT-B/16's widths and heads (768 / 512 wide, 12 / 8 heads; 2 layers,
32-pixel images), loaded through the normal checkpoint path, in fp32 and in the PREC the shipped ViT-B/16
configs use (fp16, run on the CPU: the ``honour_precision_on_cpu`` fixture). Shape bugs a 64-wide CLIP hides (MaPLe's
512 -> 768 coupling, 768-wide visual prompts) show up here."""
import pytest
import torch

from helpers_clip import TINY_CONFIGS, build_clip_trainer
from helpers_gram import write_fresh_meta_checkpoint

SHIPPED_PRECISIONS = ("fp32", "fp16")  # the tiny configs' and the ViT-B/16 configs'


def test_the_preset_has_vit_b16_widths_and_heads_through_the_normal_loader(vit_b16_width_checkpoint):
    from trainers.backbone.clip_loader import load_clip

    model = load_clip(vit_b16_width_checkpoint)
    vision, text = model.visual.transformer.resblocks[0].attn, model.transformer.resblocks[0].attn
    assert (vision.embed_dim, vision.num_heads, text.embed_dim, text.num_heads) == (768, 12, 512, 8)
    assert model.visual.input_resolution == 32 and model.visual.proj.shape == (768, 512)


def short_run(trainer_name: str, method: str, prec: str, root: str, output_dir: str, backbone: str,
              extra=()) -> list:
    """Build the trainer and take two training steps (TPT: tune and predict one test image); the losses."""
    from dassl.engine import TRAINER_REGISTRY

    import trainers  # noqa: F401  (registers the trainers)

    opts = [f"TRAINER.{TRAINER_REGISTRY.get(method).method_key}.PREC", prec, "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
            "TRAINER.TPT.N_VIEWS", "8", *extra]
    trainer = build_clip_trainer(trainer_name, TINY_CONFIGS[method], root, output_dir, backbone, opts)
    if method == "TPT":
        views, _ = trainer.parse_batch_test(next(iter(trainer.test_loader)))
        return [float(trainer.build_tuner().predict(views[0]).float().logsumexp(-1))]
    losses = []
    trainer.num_batches = 2
    for trainer.batch_idx, batch in zip(range(2), trainer.train_loader_x):
        losses.append(trainer.forward_backward(batch)["loss"])
    return losses


@pytest.mark.parametrize("prec", SHIPPED_PRECISIONS)
@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.slow) if m == "ProMetaR" else m
                                    for m in sorted(TINY_CONFIGS)])  # ProMetaR: 10-15 s a case
def test_every_trainer_takes_finite_steps_at_vit_b16_widths(method, prec, honour_precision_on_cpu, dataset_root,
                                                            vit_b16_width_checkpoint, tmp_path):
    losses = short_run(method, method, prec, dataset_root, str(tmp_path), vit_b16_width_checkpoint)
    assert losses and all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.slow
@pytest.mark.parametrize("prec", SHIPPED_PRECISIONS)
@pytest.mark.parametrize("method", sorted(TINY_CONFIGS))
def test_every_gram_variant_takes_finite_steps_at_vit_b16_widths(method, prec, honour_precision_on_cpu, dataset_root,
                                                                 vit_b16_width_checkpoint, tmp_path):
    baseline = build_clip_trainer(method, TINY_CONFIGS[method], dataset_root, str(tmp_path / "base"),
                                  vit_b16_width_checkpoint)
    path = write_fresh_meta_checkpoint(method, dict(baseline.prompt_parameters()), vit_b16_width_checkpoint,
                                       str(tmp_path / "meta_checkpoint.pth"))
    extra = ["TRAINER.GRAM.META_CKPT", path] + (["TRAINER.GRAM.REGULATOR", "identity"] if method == "TPT" else [])
    losses = short_run(f"{method}_GRAM", method, prec, dataset_root, str(tmp_path / "gram"), vit_b16_width_checkpoint,
                       extra)
    assert losses and all(torch.isfinite(torch.tensor(losses)))


def test_zero_shot_clip_evaluates_at_vit_b16_widths(dataset_root, vit_b16_width_checkpoint, tmp_path):
    trainer = build_clip_trainer("ZeroshotCLIP", "configs/trainers/ZeroshotCLIP/tiny.yaml", dataset_root,
                                 str(tmp_path), vit_b16_width_checkpoint)
    assert 0.0 <= trainer.test() <= 100.0
