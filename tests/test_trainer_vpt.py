"""VPT (deep visual prompts) on the colour fixture with a tiny CLIP."""
import pytest
import torch
from dassl.utils import load_checkpoint

from helpers_clip import build_clip_trainer
from prompt_method_checks import QUIET, changed_weights, check_ready_for_gram, shared_tests, train_briefly
from trainers.backbone.clip_loader import load_clip
from trainers.backbone.text_encoder import encode_texts
from trainers.vpt import build_vpt_clip

CONFIG = "configs/trainers/VPT/tiny_ep5_batch8_4.yaml"
EPOCHS = 5
PROMPTS = ["prompt_learner.vision.prompts.0", "prompt_learner.vision.prompts.1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset_root, tiny_vit_checkpoint):
    output_dir = str(tmp_path_factory.mktemp("vpt"))
    return train_briefly("VPT", CONFIG, dataset_root, output_dir, tiny_vit_checkpoint)


def test_only_the_visual_prompts_train_and_clip_is_unchanged(trained):
    trainer = trained["trainer"]
    assert list(trainer.prompt_parameters()) == PROMPTS
    assert trainer.prompt_parameters()[PROMPTS[0]].shape == (4, 64)
    assert changed_weights(trained) == PROMPTS
    checkpoint = load_checkpoint(f"{trained['output_dir']}/prompt_learner/model.pth.tar-{EPOCHS}")
    assert sorted(checkpoint["state_dict"]) == ["vision.prompts.0", "vision.prompts.1"]


test_training_loss_falls, test_evaluation_prints_result_lines_and_reload_reproduces_accuracy = \
    shared_tests("VPT", CONFIG, EPOCHS)


@pytest.mark.parametrize("n_ctx, depth", [(0, 2), (4, 0)])
def test_without_prompt_tokens_vpt_is_zero_shot_clip(tiny_vit_checkpoint, n_ctx, depth):
    clip_model = load_clip(tiny_vit_checkpoint).float()
    names = ["red", "green", "blue"]
    model = build_vpt_clip(clip_model, names, n_ctx, depth, "a photo of a")
    assert not list(model.prompt_learner.parameters())
    images = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        image_features = clip_model.encode_image(images)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        text_features = encode_texts(clip_model, [f"a photo of a {name}." for name in names])
        expected = clip_model.logit_scale.exp() * image_features @ text_features.t()
        torch.testing.assert_close(model(images), expected)


def test_pair_logits_equal_class_logits_and_prompts_are_substitutable_for_gram(trained):
    check_ready_for_gram(trained["trainer"])


@pytest.mark.parametrize("option, message", [
    (["TRAINER.VPT.N_CTX_VISION", "0"], "N_CTX_VISION and PROMPT_DEPTH_VISION must be >= 1"),
    (["TRAINER.VPT.PROMPT_DEPTH_VISION", "3"], "visual prompt depth must be between 1 and the 2 layers"),
])
def test_settings_without_trainable_prompts_or_beyond_the_tower_are_refused(dataset_root, tiny_vit_checkpoint,
                                                                            tmp_path, option, message):
    with pytest.raises(ValueError, match=message):
        build_clip_trainer("VPT", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint, [*option, *QUIET])


def test_a_resnet_clip_is_refused(dataset_root, tiny_rn_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="visual prompts need a ViT image tower"):
        build_clip_trainer("VPT", CONFIG, dataset_root, str(tmp_path), tiny_rn_checkpoint, QUIET)
