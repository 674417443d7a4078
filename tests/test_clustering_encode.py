"""The CLIP feature cache: correct features, resume after interruption, cache reuse, bad corpora."""
import json
import os

import clip
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from clustering import EncodingError, encode_corpus, load_encoded


@pytest.fixture(scope="module")
def tiny_clip():
    torch.manual_seed(0)
    model = clip.model.CLIP(embed_dim=32, image_resolution=16, vision_layers=1, vision_width=64,
                            vision_patch_size=8, context_length=77, vocab_size=49408, transformer_width=64,
                            transformer_heads=1, transformer_layers=1)
    return model.eval()


TRANSFORM = transforms.Compose([transforms.Resize(16), transforms.CenterCrop(16), transforms.ToTensor()])


def _items(count, start=0):
    rng = np.random.default_rng(start)
    return [(f"id{row}", Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)), f"a photo number {row}")
            for row in range(start, start + count)]


def _encode(model, items, cache_dir, **kwargs):
    kwargs.setdefault("clip_fingerprint", "tiny")
    return encode_corpus(model, TRANSFORM, items, str(cache_dir), shard_size=4, batch_size=3, progress=False, **kwargs)


def test_features_are_clip_features_normalised_in_corpus_order(tiny_clip, tmp_path):
    items = _items(10)
    encoded = _encode(tiny_clip, items, tmp_path)
    with torch.no_grad():
        image = tiny_clip.encode_image(torch.stack([TRANSFORM(image) for _, image, _ in items]))
        text = tiny_clip.encode_text(clip.tokenize([caption for _, _, caption in items]))
    expected_image = torch.nn.functional.normalize(image, dim=-1).numpy()
    expected_text = torch.nn.functional.normalize(text, dim=-1).numpy()
    assert encoded.ids == [corpus_id for corpus_id, _, _ in items]
    assert encoded.captions == [caption for _, _, caption in items]
    assert encoded.image.dtype == np.float32 and encoded.image.shape == (10, 32)
    np.testing.assert_allclose(encoded.image, expected_image, atol=1e-5)
    np.testing.assert_allclose(encoded.text, expected_text, atol=1e-5)
    manifest = json.load(open(tmp_path / "manifest.json"))
    assert manifest["complete"] and [entry["count"] for entry in manifest["shards"]] == [4, 4, 2]


def test_dataset_dicts_with_transformed_images_give_the_same_features(tiny_clip, tmp_path):
    items = _items(7)
    from_pil = _encode(tiny_clip, items, tmp_path / "pil")
    dicts = [{"id": corpus_id, "img": TRANSFORM(image), "caption": caption} for corpus_id, image, caption in items]
    from_tensors = _encode(tiny_clip, dicts, tmp_path / "tensors")
    assert from_tensors.ids == from_pil.ids
    np.testing.assert_allclose(from_tensors.image, from_pil.image, atol=1e-6)


def _interrupted_after(items, count):
    for index, item in enumerate(items):
        if index == count:
            raise KeyboardInterrupt("stopped by the user")
        yield item


def test_interrupted_run_resumes_without_recomputing_finished_shards(tiny_clip, tmp_path):
    items = _items(14)
    with pytest.raises(KeyboardInterrupt):
        _encode(tiny_clip, _interrupted_after(items, 10), tmp_path / "resumed")  # shards 0, 1 done, 2 half
    finished = {name: os.path.getmtime(tmp_path / "resumed" / name)
                for name in os.listdir(tmp_path / "resumed") if name.startswith("shard_0000")}
    resumed = _encode(tiny_clip, items, tmp_path / "resumed")
    assert resumed.pairs_encoded == 14 - 8
    assert finished and all(os.path.getmtime(tmp_path / "resumed" / name) == mtime for name, mtime in finished.items())
    uninterrupted = _encode(tiny_clip, items, tmp_path / "straight")
    assert resumed.ids == uninterrupted.ids
    np.testing.assert_allclose(resumed.image, uninterrupted.image, atol=1e-6)
    np.testing.assert_allclose(resumed.text, uninterrupted.text, atol=1e-6)


def test_rerun_with_same_corpus_key_reads_nothing(tiny_clip, tmp_path):
    first = _encode(tiny_clip, _items(9), tmp_path, corpus_key="corpus-v1")

    def must_not_be_read():
        raise AssertionError("the corpus was read although the cache is complete")
        yield

    again = _encode(tiny_clip, must_not_be_read(), tmp_path, corpus_key="corpus-v1")
    assert again.pairs_encoded == 0
    np.testing.assert_array_equal(again.image, first.image)


def test_changed_caption_reencodes_only_that_pair(tiny_clip, tmp_path):
    items = _items(9)
    _encode(tiny_clip, items, tmp_path)
    corpus_id, image, _ = items[5]
    items[5] = (corpus_id, image, "a different caption")
    changed = _encode(tiny_clip, items, tmp_path)
    assert changed.pairs_encoded == 1
    assert changed.captions[5] == "a different caption"
    with torch.no_grad():
        text = tiny_clip.encode_text(clip.tokenize(["a different caption"]))
    np.testing.assert_allclose(changed.text[5], torch.nn.functional.normalize(text, dim=-1)[0].numpy(), atol=1e-5)


def test_cache_of_another_clip_is_rebuilt_and_refused_on_load(tiny_clip, tmp_path):
    _encode(tiny_clip, _items(6), tmp_path, clip_fingerprint="old")
    rebuilt = _encode(tiny_clip, _items(6), tmp_path, clip_fingerprint="new")
    assert rebuilt.pairs_encoded == 6 and rebuilt.clip_fingerprint == "new"
    with pytest.raises(EncodingError, match="was made with CLIP new, but the model is old"):
        load_encoded(str(tmp_path), expected_clip_fingerprint="old")


def test_duplicate_ids_are_refused(tiny_clip, tmp_path):
    items = _items(6)
    items[4] = ("id1",) + items[4][1:]
    with pytest.raises(EncodingError, match=r"corpus.tsv has duplicate id 'id1' \(items 1 and 4\)"):
        _encode(tiny_clip, items, tmp_path, source="corpus.tsv")


def test_incomplete_cache_is_refused_on_load(tiny_clip, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _encode(tiny_clip, _interrupted_after(_items(10), 6), tmp_path)
    with pytest.raises(EncodingError, match="missing or incomplete"):
        load_encoded(str(tmp_path))
