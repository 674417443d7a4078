"""Encode an image-text corpus with frozen CLIP into a resumable cache of feature shards.

Every pair is encoded once: the image with ``model.encode_image(transform(image))``, the caption with
``model.encode_text(clip.tokenize(caption, truncate=True))``; both are L2-normalised and stored as
float32. Pairs are grouped into shards of ``shard_size`` consecutive items (corpus order); each
shard is three files written atomically in ``cache_dir``: ``shard_<i>.image.npy``,
``shard_<i>.text.npy`` and ``shard_<i>.pairs.json`` (ids and captions). ``manifest.json`` (also
atomic, rewritten after every shard) records:

- ``format`` (1) and ``settings``: ``clip_fingerprint``, ``shard_size``, ``transform`` (its repr);
  a cache made with other settings is discarded and rebuilt;
- ``shards``: per shard its ``count`` (null while the shard's files are being rewritten);
- ``complete`` (the corpus was read to its end), ``num_pairs``, ``corpus_key``.

Resuming: an item found at the same place (same id and caption) in a shard the manifest lists
reuses the cached features; only the other items are transformed and encoded (in batches, so
memory holds one batch of images), and a shard is rewritten only when something in it changed. An
interrupted run therefore recomputes only the missing shards (the corpus is still read). A complete
cache whose ``corpus_key`` equals the caller's (e.g. the hash of the corpus manifest) is used without
reading the corpus at all.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import clip
import numpy as np
import torch
from tqdm import tqdm

from fileio.atomic import save_npy_atomic, write_json_atomic

MANIFEST_NAME = "manifest.json"
CACHE_FORMAT = 1


class EncodingError(ValueError):
    """A corpus or cache that cannot be encoded or read (one-line message)."""


@dataclass
class EncodedCorpus:
    ids: list[str]
    captions: list[str]
    image: np.ndarray  # (n, d) float32, unit rows
    text: np.ndarray  # (n, d) float32, unit rows
    clip_fingerprint: str
    cache_dir: str
    pairs_encoded: int = 0  # pairs this call ran through CLIP (the rest came from the cache)


def _shard_files(index: int) -> dict[str, str]:
    stem = f"shard_{index:05d}"
    return {"image": f"{stem}.image.npy", "text": f"{stem}.text.npy", "pairs": f"{stem}.pairs.json"}


def _as_pair(item: Any) -> tuple[str, Any, str]:
    """``(id, image, caption)`` of a corpus item: a ``CorpusItem``-like object, a ``CorpusDataset``
    dict ``{"id", "img", "caption"}`` or a 3-tuple."""
    if isinstance(item, dict):
        return str(item["id"]), item["img"], str(item["caption"])
    if hasattr(item, "caption"):
        return str(item.id), item.image, str(item.caption)
    corpus_id, image, caption = item
    return str(corpus_id), image, str(caption)


def corpus_source_key(path: str) -> str:
    """A key that changes when the corpus at ``path`` changes: the file's sha256, or for a folder
    the names, sizes and modification times of its files."""
    digest = hashlib.sha256()
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    else:
        for folder, _, names in sorted(os.walk(path)):
            for name in sorted(names):
                stat = os.stat(os.path.join(folder, name))
                digest.update(f"{os.path.relpath(os.path.join(folder, name), path)}\t{stat.st_size}\t"
                              f"{stat.st_mtime_ns}\n".encode("utf-8"))
    return digest.hexdigest()


def _read_manifest(cache_dir: str) -> Optional[dict]:
    path = os.path.join(cache_dir, MANIFEST_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise EncodingError(f"feature cache manifest {path} is not readable JSON ({error}); delete it to re-encode") from None


def _shard_present(cache_dir: str, entry: Optional[dict], index: int) -> bool:
    return entry is not None and all(
        os.path.isfile(os.path.join(cache_dir, name)) for name in _shard_files(index).values())


def _read_shard(cache_dir: str, index: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """``({"ids", "captions"}, image features, text features)`` of a cached shard (memory-mapped)."""
    files = {key: os.path.join(cache_dir, name) for key, name in _shard_files(index).items()}
    with open(files["pairs"], "r", encoding="utf-8") as handle:
        pairs = json.load(handle)
    return pairs, np.load(files["image"], mmap_mode="r"), np.load(files["text"], mmap_mode="r")


class _PairEncoder:
    """Frozen CLIP forward for batches of (PIL image, caption); counts the pairs it encodes."""

    def __init__(self, model: Any, transform: Callable, device: str) -> None:
        self.model = model
        self.transform = transform
        self.device = device
        self.context_length = getattr(model, "context_length", 77)
        self.pairs_encoded = 0

    @staticmethod
    def _unit(features: torch.Tensor) -> np.ndarray:
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()

    @torch.inference_mode()
    def __call__(self, images: list, captions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        pixels = torch.stack([image if torch.is_tensor(image) else self.transform(image)
                              for image in images]).to(self.device)
        tokens = clip.tokenize(captions, context_length=self.context_length, truncate=True).to(self.device)
        self.pairs_encoded += len(images)
        return self._unit(self.model.encode_image(pixels)), self._unit(self.model.encode_text(tokens))


class _ShardBuilder:
    """Collects one shard's pairs as they are read: a pair found at the same place in the cached
    shard (same id and caption) reuses its cached rows, the others are encoded in batches."""

    def __init__(self, encoder: _PairEncoder, batch_size: int,
                 cached: Optional[tuple[dict, np.ndarray, np.ndarray]]) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        self.cached = cached
        self.ids: list[str] = []
        self.captions: list[str] = []
        self.image_rows: list[Optional[np.ndarray]] = []
        self.text_rows: list[Optional[np.ndarray]] = []
        self.pending: list[tuple[int, Any]] = []
        self.changed = cached is None

    def __len__(self) -> int:
        return len(self.ids)

    def _in_cache(self, position: int, corpus_id: str, caption: str) -> bool:
        if self.cached is None:
            return False
        pairs = self.cached[0]
        return position < len(pairs["ids"]) and pairs["ids"][position] == corpus_id \
            and pairs["captions"][position] == caption

    def add(self, corpus_id: str, image: Any, caption: str) -> None:
        position = len(self.ids)
        self.ids.append(corpus_id)
        self.captions.append(caption)
        if self._in_cache(position, corpus_id, caption):
            self.image_rows.append(self.cached[1][position])
            self.text_rows.append(self.cached[2][position])
            return
        self.changed = True
        self.image_rows.append(None)
        self.text_rows.append(None)
        self.pending.append((position, image))
        if len(self.pending) == self.batch_size:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        positions = [position for position, _ in self.pending]
        image_features, text_features = self.encoder([image for _, image in self.pending],
                                                     [self.captions[position] for position in positions])
        for row, position in enumerate(positions):
            self.image_rows[position] = image_features[row]
            self.text_rows[position] = text_features[row]
        self.pending = []

    def write(self, cache_dir: str, index: int) -> dict:
        """Encode what is still pending, write the shard's files; return its manifest entry."""
        self._flush()
        files = _shard_files(index)
        save_npy_atomic(os.path.join(cache_dir, files["image"]), np.stack(self.image_rows))
        save_npy_atomic(os.path.join(cache_dir, files["text"]), np.stack(self.text_rows))
        write_json_atomic(os.path.join(cache_dir, files["pairs"]), {"ids": self.ids, "captions": self.captions})
        return {"count": len(self.ids)}


def encode_corpus(
    model: Any,
    transform: Callable,
    items: Iterable[Any],
    cache_dir: str,
    *,
    clip_fingerprint: str,
    corpus_key: Optional[str] = None,
    shard_size: int = 4096,
    batch_size: int = 256,
    device: str = "cpu",
    source: str = "the corpus",
    progress: bool = True,
) -> EncodedCorpus:
    """Encode ``items`` with frozen ``model`` into ``cache_dir``; return the whole corpus's features.

    ``items``: ``CorpusItem``-like objects (``.id``, ``.image``, ``.caption``), ``(id, image, caption)``
    tuples, or ``CorpusDataset`` dicts (e.g. from a ``DataLoader`` with workers and ``batch_size=None``).
    ``model`` is a CLIP in eval mode on ``device``; ``transform`` maps a PIL image to the model's
    input tensor (an image that already is a tensor is used as it is).
    """
    settings = {"clip_fingerprint": clip_fingerprint, "shard_size": shard_size, "transform": repr(transform)}
    manifest = _read_manifest(cache_dir)
    if manifest is None or manifest.get("format") != CACHE_FORMAT or manifest.get("settings") != settings:
        manifest = {"format": CACHE_FORMAT, "settings": settings, "shards": [], "complete": False}
    elif manifest["complete"] and corpus_key is not None and manifest.get("corpus_key") == corpus_key:
        return load_encoded(cache_dir, clip_fingerprint)
    manifest.update(complete=False, corpus_key=corpus_key)
    os.makedirs(cache_dir, exist_ok=True)
    manifest_path = os.path.join(cache_dir, MANIFEST_NAME)
    shards = manifest["shards"]
    encoder = _PairEncoder(model, transform, device)

    def open_shard(index: int) -> _ShardBuilder:
        entry = shards[index] if index < len(shards) else None
        cached = _read_shard(cache_dir, index) if _shard_present(cache_dir, entry, index) else None
        return _ShardBuilder(encoder, batch_size, cached)

    def close_shard(shard: _ShardBuilder, index: int) -> None:
        if index == len(shards):
            shards.append(None)
        if shard.changed or len(shard) != shards[index]["count"]:
            shards[index] = None  # the shard's files are about to change: not valid until rewritten
            write_json_atomic(manifest_path, manifest)
            shards[index] = shard.write(cache_dir, index)
            write_json_atomic(manifest_path, manifest)

    first_row: dict[str, int] = {}
    num_shards = 0
    shard = open_shard(0)
    for row, item in enumerate(tqdm(items, desc="encode", unit="pair", disable=not progress)):
        corpus_id, image, caption = _as_pair(item)
        first = first_row.setdefault(corpus_id, row)
        if first != row:
            raise EncodingError(f"{source} has duplicate id {corpus_id!r} (items {first} and {row})")
        shard.add(corpus_id, image, caption)
        if len(shard) == shard_size:
            close_shard(shard, num_shards)
            num_shards += 1
            shard = open_shard(num_shards)
    if len(shard):
        close_shard(shard, num_shards)
        num_shards += 1
    if num_shards == 0:
        raise EncodingError(f"{source} has no readable image-text pairs")
    del shards[num_shards:]
    manifest.update(complete=True, num_pairs=len(first_row))
    write_json_atomic(manifest_path, manifest)
    encoded = load_encoded(cache_dir, clip_fingerprint)
    encoded.pairs_encoded = encoder.pairs_encoded
    return encoded


def load_encoded(cache_dir: str, expected_clip_fingerprint: Optional[str] = None) -> EncodedCorpus:
    """Read a complete feature cache into memory (one (n, d) matrix per modality)."""
    manifest = _read_manifest(cache_dir)
    path = os.path.join(cache_dir, MANIFEST_NAME)
    if manifest is None or not manifest.get("complete"):
        raise EncodingError(f"feature cache {path} is missing or incomplete; run the encoding (cluster.py) to finish it")
    fingerprint = manifest["settings"]["clip_fingerprint"]
    if expected_clip_fingerprint is not None and fingerprint != expected_clip_fingerprint:
        raise EncodingError(f"feature cache {path} was made with CLIP {fingerprint}, but the model is "
                            f"{expected_clip_fingerprint}")
    ids: list[str] = []
    captions: list[str] = []
    image_shards, text_shards = [], []
    for index, entry in enumerate(manifest["shards"]):
        if not _shard_present(cache_dir, entry, index):
            raise EncodingError(f"feature cache {path} lists shard {index} but its files are missing; re-run the encoding")
        pairs, image, text = _read_shard(cache_dir, index)
        ids += pairs["ids"]
        captions += pairs["captions"]
        image_shards.append(image)
        text_shards.append(text)
    return EncodedCorpus(ids=ids, captions=captions, image=np.concatenate(image_shards),
                         text=np.concatenate(text_shards), clip_fingerprint=fingerprint, cache_dir=cache_dir)
