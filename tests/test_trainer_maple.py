"""MaPLe (coupled text and visual prompts) on the colour fixture with a tiny CLIP."""
import clip
import pytest
import torch

from helpers_clip import build_clip_trainer
from prompt_method_checks import QUIET, changed_weights, check_ready_for_gram, shared_tests, train_briefly
from trainers.backbone.clip_loader import load_clip
from trainers.backbone.text_encoder import encode_texts
from trainers.maple import MultiModalPromptLearner
from trainers.vl_prompts import DeepPromptCLIP

CONFIG = "configs/trainers/MaPLe/tiny_ep5_batch8_2ctx.yaml"
EPOCHS = 5
PROMPTS = ["prompt_learner.ctx", "prompt_learner.deep_text.0", "prompt_learner.proj.weight",
           "prompt_learner.proj.bias", "prompt_learner.compound_prompt_projections.0.weight",
           "prompt_learner.compound_prompt_projections.0.bias"]
NAMES = ["red", "green", "blue"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset_root, tiny_vit_checkpoint):
    output_dir = str(tmp_path_factory.mktemp("maple"))
    return train_briefly("MaPLe", CONFIG, dataset_root, output_dir, tiny_vit_checkpoint)


@pytest.fixture(scope="module")
def clip_model(tiny_vit_checkpoint):
    return load_clip(tiny_vit_checkpoint).float()


def test_prompts_and_coupling_functions_train_and_clip_is_unchanged(trained):
    trainer = trained["trainer"]
    assert list(trainer.prompt_parameters()) == PROMPTS
    assert trainer.prompt_parameters()["prompt_learner.ctx"].shape == (2, 64)
    assert changed_weights(trained) == PROMPTS


test_training_loss_falls, test_evaluation_prints_result_lines_and_reload_reproduces_accuracy = \
    shared_tests("MaPLe", CONFIG, EPOCHS)


def test_context_learns_the_first_init_words_and_keeps_the_rest_fixed(clip_model):
    learner = MultiModalPromptLearner(clip_model, NAMES, n_ctx=2, ctx_init="a photo of a", depth=1)
    with torch.no_grad():
        words = clip_model.token_embedding(clip.tokenize("a photo"))[0, 1:3]
        torch.testing.assert_close(learner.ctx, words)
        text_features = DeepPromptCLIP(clip_model, learner).class_text_features()
    # depth 1: no deep text prompts, so the text side is exactly "a photo of a <class>."
    torch.testing.assert_close(text_features, encode_texts(clip_model, [f"a photo of a {n}." for n in NAMES]))


def test_visual_prompts_are_the_projected_text_prompts(clip_model):
    torch.manual_seed(0)
    learner = MultiModalPromptLearner(clip_model, NAMES, n_ctx=2, ctx_init="a photo of a", depth=2)
    visual = learner.visual_prompts()
    assert len(visual) == 2
    torch.testing.assert_close(visual[0], learner.proj(learner.ctx))
    torch.testing.assert_close(visual[1], learner.compound_prompt_projections[0](learner.deep_text[0]))
    image_features = DeepPromptCLIP(clip_model, learner).encode_images(torch.randn(2, 3, 32, 32))
    grads = torch.autograd.grad(image_features.sum(), [learner.ctx, learner.deep_text[0]])
    assert all(grad.abs().sum() > 0 for grad in grads)  # the image tower depends on the text prompts


def test_pair_logits_equal_class_logits_and_prompts_are_substitutable_for_gram(trained):
    check_ready_for_gram(trained["trainer"])


@pytest.mark.parametrize("option, message", [
    (["TRAINER.MAPLE.PROMPT_DEPTH", "0"], "PROMPT_DEPTH must be between 1 and the 2 layers"),
    (["TRAINER.MAPLE.PROMPT_DEPTH", "3"], "PROMPT_DEPTH must be between 1 and the 2 layers"),
    (["TRAINER.MAPLE.N_CTX", "0"], "N_CTX must be >= 1"),
])
def test_invalid_settings_are_refused(dataset_root, tiny_vit_checkpoint, tmp_path, option, message):
    with pytest.raises(ValueError, match=message):
        build_clip_trainer("MaPLe", CONFIG, dataset_root, str(tmp_path), tiny_vit_checkpoint, [*option, *QUIET])
