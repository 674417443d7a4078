"""Text encoder, prompt construction, deep-prompt forward, transforms and precision handling."""
import clip
import numpy as np
import pytest
import torch
from clip import clip as openai_clip
from PIL import Image

from trainers.backbone.deep_prompts import VisualEncoder, replace_tokens, run_resblocks
from trainers.backbone.precision import (PrecisionFallbackWarning, apply_precision, check_precision,
                                         resolve_precision)
from trainers.backbone.prompt_learner import PromptLearner, build_prompt_embeddings, count_tokens
from trainers.backbone.text_encoder import TextEncoder, encode_prompts_in_chunks, encode_texts
from testing.tiny_clip import build_tiny_clip
from trainers.backbone.transforms import clip_preprocess

CLASSNAMES = ["cat", "golden_retriever", "sea lion", "fire truck"]


@pytest.fixture(scope="module")
def clip_model():
    return build_tiny_clip("vit", seed=0)


def _literal_features(clip_model, sentences):
    with torch.no_grad():
        return clip_model.encode_text(clip.tokenize(sentences))


def test_text_encoder_equals_encode_text_for_plain_prompts(clip_model):
    tokens = clip.tokenize([f"a photo of a {name}." for name in CLASSNAMES])
    with torch.no_grad():
        embeddings = clip_model.token_embedding(tokens)
        features = TextEncoder(clip_model)(embeddings, tokens)
    torch.testing.assert_close(features, _literal_features(clip_model, [f"a photo of a {n}." for n in CLASSNAMES]))


@pytest.mark.parametrize("position, sentence", [
    ("end", "a photo of a {}."),
    ("middle", "a photo {} of a."),
    ("front", "{} a photo of a."),
])
def test_context_initialised_from_words_reproduces_the_sentence(clip_model, position, sentence):
    learner = PromptLearner(clip_model, CLASSNAMES, ctx_init="a photo of a", class_token_position=position)
    assert learner.n_ctx == 4 and learner.ctx.shape == (4, 64)
    with torch.no_grad():
        features = TextEncoder(clip_model)(learner(), learner.tokenized_prompts)
    names = [name.replace("_", " ") for name in CLASSNAMES]
    torch.testing.assert_close(features, _literal_features(clip_model, [sentence.format(n) for n in names]))


def test_context_length_counts_bpe_tokens_not_words(clip_model):
    learner = PromptLearner(clip_model, CLASSNAMES, ctx_init="a photograph of an axolotl")
    assert learner.n_ctx == count_tokens("a photograph of an axolotl") > 5


def test_random_context_is_seeded_and_class_specific_when_asked(clip_model):
    torch.manual_seed(0)
    first = PromptLearner(clip_model, CLASSNAMES, n_ctx=8)
    torch.manual_seed(0)
    second = PromptLearner(clip_model, CLASSNAMES, n_ctx=8)
    assert torch.equal(first.ctx, second.ctx)
    assert abs(first.ctx.std().item() - 0.02) < 0.005
    specific = PromptLearner(clip_model, CLASSNAMES, n_ctx=8, class_specific=True)
    assert specific.ctx.shape == (len(CLASSNAMES), 8, 64)
    last_eot = int(specific.tokenized_prompts.argmax(-1).max())
    assert specific().shape == (len(CLASSNAMES), last_eot + 1, 64)  # cut after the last EOT token


def test_checkpoint_holds_only_the_learned_context(clip_model):
    learner = PromptLearner(clip_model, CLASSNAMES, n_ctx=4)
    assert list(learner.state_dict()) == ["ctx"]
    assert [name for name, _ in learner.named_parameters()] == ["ctx"]


def test_prompts_for_captions_equal_the_literal_caption_prompt(clip_model):
    learner = PromptLearner(clip_model, CLASSNAMES, ctx_init="a photo of a")
    captions = ["dog running on the beach", "two people riding bikes"]
    embeddings, tokenized = learner.prompts_for_texts(captions)
    with torch.no_grad():
        features = TextEncoder(clip_model)(embeddings, tokenized)
    torch.testing.assert_close(features, _literal_features(clip_model, [f"a photo of a {c}." for c in captions]))
    same_embeddings, _ = build_prompt_embeddings(clip_model, learner.ctx, captions)
    assert torch.equal(same_embeddings, embeddings)


def test_long_captions_are_truncated_keeping_the_end_token(clip_model):
    ctx = torch.zeros(16, 64, requires_grad=True)
    embeddings, tokenized = build_prompt_embeddings(clip_model, ctx, ["word " * 200, "short"])
    assert embeddings.shape == (2, 77, 64)
    assert tokenized[0, -1].item() == tokenized.max().item()  # EOT at the last position
    TextEncoder(clip_model)(embeddings, tokenized).sum().backward()
    assert ctx.grad.abs().sum() > 0


def test_chunked_encoding_matches_one_pass_values_and_gradients(clip_model):
    learner = PromptLearner(clip_model, CLASSNAMES, n_ctx=4)
    encoder = TextEncoder(clip_model)

    def build(rows):
        return learner(rows), learner.tokenized_prompts[rows]

    results = []
    for chunk in (0, 3):
        learner.ctx.grad = None
        features = encode_prompts_in_chunks(encoder, len(CLASSNAMES), build, chunk)
        (features ** 2).sum().backward()
        results.append((features.detach(), learner.ctx.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0])
    scale = results[0][1].abs().max().item()
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-3, atol=1e-4 * scale)  # summation order


def test_encode_texts_is_chunked_and_normalised(clip_model):
    texts = [f"a photo of a {name}." for name in CLASSNAMES]
    features = encode_texts(clip_model, texts, chunk=3)
    expected = _literal_features(clip_model, texts)
    torch.testing.assert_close(features, expected / expected.norm(dim=-1, keepdim=True))
    assert not features.requires_grad


def test_zero_depth_prompts_equal_the_plain_forward(clip_model):
    images = torch.randn(3, 3, 32, 32)
    learner = PromptLearner(clip_model, CLASSNAMES, ctx_init="a photo of a")
    with torch.no_grad():
        torch.testing.assert_close(VisualEncoder(clip_model)(images, []), clip_model.encode_image(images))
        text = TextEncoder(clip_model)
        torch.testing.assert_close(text(learner(), learner.tokenized_prompts, []),
                                   text(learner(), learner.tokenized_prompts))
    resnet = build_tiny_clip("rn", vision_width=32)
    with torch.no_grad():
        torch.testing.assert_close(VisualEncoder(resnet)(images), resnet.encode_image(images))
    with pytest.raises(ValueError, match="ViT"):
        VisualEncoder(resnet)(images, [torch.zeros(2, 64)])


def test_replace_tokens_overwrites_only_the_prompt_slot():
    x = torch.randn(10, 3, 8)
    prompt = torch.ones(2, 8)
    replaced = replace_tokens(x, prompt, start=4)
    assert torch.equal(replaced[4:6], torch.ones(2, 3, 8))
    assert torch.equal(replaced[:4], x[:4]) and torch.equal(replaced[6:], x[6:])
    per_sample = torch.randn(3, 2, 8)  # batch-first prompts
    assert torch.equal(replace_tokens(x, per_sample, 1)[1:3], per_sample.permute(1, 0, 2))


def test_every_layer_prompt_reaches_the_output(clip_model):
    depth = len(clip_model.visual.transformer.resblocks)
    visual_prompts = [torch.randn(3, 64, requires_grad=True) for _ in range(depth)]
    VisualEncoder(clip_model)(torch.randn(2, 3, 32, 32), visual_prompts).sum().backward()
    assert all(prompt.grad.abs().sum() > 0 for prompt in visual_prompts)

    learner = PromptLearner(clip_model, CLASSNAMES, n_ctx=2)
    text_prompts = [torch.randn(2, 64, requires_grad=True) for _ in range(depth - 1)]
    TextEncoder(clip_model)(learner(), learner.tokenized_prompts, text_prompts).sum().backward()
    assert all(prompt.grad.abs().sum() > 0 for prompt in text_prompts)
    with pytest.raises(ValueError, match="residual blocks"):
        run_resblocks(clip_model.transformer.resblocks, torch.zeros(77, 1, 64), [None] * (depth + 1))


def test_clip_preprocess_equals_clips_own_transform():
    rng = np.random.default_rng(0)
    for mode, shape in (("RGB", (50, 70, 3)), ("L", (64, 40))):
        image = Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode=mode)
        torch.testing.assert_close(clip_preprocess(32)(image), openai_clip._transform(32)(image))


def test_fp16_on_cpu_falls_back_to_fp32_with_a_warning():
    with pytest.warns(PrecisionFallbackWarning, match="fp16"):
        assert resolve_precision("fp16", torch.device("cpu")) == "fp32"
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match="PREC must be one of"):
        check_precision("bf8")
    model = build_tiny_clip()
    model.half()
    assert apply_precision(model, "fp32").dtype == torch.float32
