"""ZeroshotCLIP: logits equal a hand computation, the prompt ensemble, result lines, fallback."""
import clip
import pytest
import torch

from helpers_clip import COLORS, build_clip_trainer
from trainers.backbone.clip_loader import load_clip
from trainers.backbone.precision import PrecisionFallbackWarning
from trainers.backbone.templates import DEFAULT_TEMPLATE, IMAGENET_TEMPLATES_SELECT, dataset_template, ensemble_templates

CONFIG = "configs/trainers/ZeroshotCLIP/tiny.yaml"


def normalized(features):
    return features / features.norm(dim=-1, keepdim=True)


def hand_logits(checkpoint, images, templates):
    model = load_clip(checkpoint).float()
    with torch.no_grad():
        image_features = normalized(model.encode_image(images))
        per_template = [normalized(model.encode_text(clip.tokenize([t.format(c) for c in COLORS]))) for t in templates]
        text_features = normalized(torch.stack(per_template).mean(0))
        return model.logit_scale.exp() * image_features @ text_features.t()


@pytest.mark.parametrize("checkpoint_fixture", ["tiny_vit_checkpoint", "tiny_rn_checkpoint"])
def test_logits_equal_a_hand_computation(request, checkpoint_fixture, dataset_root, tmp_path):
    checkpoint = request.getfixturevalue(checkpoint_fixture)
    trainer = build_clip_trainer("ZeroshotCLIP", CONFIG, dataset_root, str(tmp_path), checkpoint)
    images = next(iter(trainer.test_loader))["img"][:5]
    torch.testing.assert_close(trainer.model_inference(images), hand_logits(checkpoint, images, [DEFAULT_TEMPLATE]))


def test_prompt_ensemble_averages_normalised_template_features(dataset_root, tiny_vit_checkpoint, tmp_path):
    trainer = build_clip_trainer("ZeroshotCLIP", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint,
                                 ["TRAINER.ZSCLIP.ENSEMBLE", "True"])
    templates = ensemble_templates("ClipColorFixture")
    assert templates == IMAGENET_TEMPLATES_SELECT + [DEFAULT_TEMPLATE]
    images = next(iter(trainer.test_loader))["img"][:5]
    torch.testing.assert_close(trainer.model_inference(images), hand_logits(tiny_vit_checkpoint, images, templates))


def test_dataset_templates_follow_coop():
    assert dataset_template("OxfordPets") == "a photo of a {}, a type of pet."
    assert dataset_template("EuroSAT") == "a centered satellite photo of {}."
    assert dataset_template("SomethingNew") == DEFAULT_TEMPLATE
    assert ensemble_templates("ImageNet") == IMAGENET_TEMPLATES_SELECT
    assert ensemble_templates("DescribableTextures")[-1] == "{} texture."


def test_evaluation_prints_dassl_result_lines(dataset_root, tiny_vit_checkpoint, tmp_path, capsys):
    trainer = build_clip_trainer("ZeroshotCLIP", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint)
    trainer.load_model(None)  # --eval-only without --model-dir, as CoOp's zero-shot script runs it
    accuracy = trainer.test()
    printed = capsys.readouterr().out
    for line in ("=> result", "* total: 16", "* correct:", "* accuracy:", "* error:", "* macro_f1:"):
        assert line in printed
    assert 0.0 <= accuracy <= 100.0
    trainer.train()  # nothing to train: evaluates instead
    assert "has no parameters to train" in capsys.readouterr().out


def test_fp16_on_cpu_falls_back_to_fp32_with_a_warning(dataset_root, tiny_vit_checkpoint, tmp_path):
    with pytest.warns(PrecisionFallbackWarning, match="fp16"):
        trainer = build_clip_trainer("ZeroshotCLIP", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint,
                                     ["TRAINER.ZSCLIP.PREC", "fp16"])
    assert trainer.precision == "fp32" and trainer.clip_model.dtype == torch.float32


def test_input_size_must_match_the_clip_resolution(dataset_root, tiny_vit_checkpoint, tmp_path):
    with pytest.raises(ValueError, match=r"INPUT.SIZE \(64, 64\) does not match the input resolution 32"):
        build_clip_trainer("ZeroshotCLIP", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint,
                           ["INPUT.SIZE", "(64, 64)"])
