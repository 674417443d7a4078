"""Encode an image-text corpus with frozen CLIP into a resumable, verified cache of feature shards.

Every pair is encoded once: the image with ``model.encode_image(transform(image))``, the caption with
``model.encode_text(clip.tokenize(caption, truncate=True))``; both are L2-normalised and stored as
float32.

Shards: shard ``i`` holds the readable pairs among corpus items ``[i * shard_size, (i + 1) * shard_size)``
(corpus order). An item whose image turns out missing or corrupt is left out of its shard and counted,
so it never shifts another shard. A shard is four files in ``cache_dir``: ``shard_<i>.image.npy``,
``shard_<i>.text.npy``, ``shard_<i>.pairs.json`` (ids and captions), each written atomically, and, written
last, ``shard_<i>.done.json``: the shard's ``count``, the cache ``settings`` and the ``sha256`` of the
three data files. ``manifest.json`` (written once every shard is done) records ``format`` (2),
``settings``, ``shards`` (each shard's done record), ``complete``, ``num_pairs`` and ``corpus_key``.

Settings: ``clip_fingerprint``, ``shard_size`` and ``transform``, the transform's repr with memory
addresses removed (``<function to_rgb>``), so the key is the same in every process.

Resuming (a re-run, or a run after ``kill -9``): a shard is trusted only if its done record exists, has
this run's settings and the three files still hash to the recorded digests; a half-written shard (no
done record: the record is deleted before a shard is rewritten) or a damaged one is not. Items found
in a trusted shard (same id and caption) reuse its rows without decoding their image; only the other
items are decoded, transformed and encoded (in batches, so memory holds one batch of images), and a
shard is rewritten only when something in it changed. A complete cache whose ``corpus_key`` equals the
caller's (e.g. the hash of the corpus manifest) and whose shards all verify is used without reading the
corpus at all.

Distributed (``torch.distributed`` running, e.g. under ``torchrun``): every rank reads the corpus's
entries (cheap: no image is decoded for shards it does not own), encodes the shards ``i`` with
``i % world_size == rank``, and rank 0 writes the manifest once all ranks are done; the shards, and so
the features, are the same as with one process.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import trainers.backbone.quiet_clip  # noqa: F401,I001  (before clip: no pkg_resources warning)
import clip
import numpy as np
import torch
from tqdm import tqdm

from fileio.atomic import save_npy_atomic, write_json_atomic
from fileio.hashing import file_sha256
from parallel import distributed

MANIFEST_NAME = "manifest.json"
CACHE_FORMAT = 2
DATA_PARTS = ("image", "text", "pairs")


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
    pairs_encoded: int = 0  # pairs this call ran through CLIP (all ranks)
    pairs_reused: int = 0  # pairs taken from verified shards of an earlier run
    shards_reused: int = 0  # shards left as they were (verified, nothing in them changed)
    pairs_skipped: int = 0  # items whose image could not be read


def describe_transform(transform: Callable) -> str:
    """``repr(transform)`` without the memory addresses repr gives functions (stable across processes)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(transform))


def _shard_files(index: int) -> dict[str, str]:
    stem = f"shard_{index:05d}"
    return {"image": f"{stem}.image.npy", "text": f"{stem}.text.npy", "pairs": f"{stem}.pairs.json",
            "done": f"{stem}.done.json"}


def _as_pair(item: Any) -> tuple[str, Any, str]:
    """``(id, image, caption)`` of a corpus item: a ``CorpusItem``-like object (``.image``), a
    ``LazyCorpusItem`` (``.load_image``, then the image is a loader called only if needed), a
    ``CorpusDataset`` dict ``{"id", "img", "caption"}`` or a 3-tuple."""
    if isinstance(item, dict):
        return str(item["id"]), item["img"], str(item["caption"])
    if hasattr(item, "load_image"):
        return str(item.id), item.load_image, str(item.caption)
    if hasattr(item, "caption"):
        return str(item.id), item.image, str(item.caption)
    corpus_id, image, caption = item
    return str(corpus_id), image, str(caption)


def corpus_source_key(path: str) -> str:
    """A key that changes when the corpus at ``path`` changes: the file's sha256, or for a folder
    the names, sizes and modification times of its files (hidden ones, such as the shard indexes
    ``datasets.corpus_index`` caches there, left out)."""
    if os.path.isfile(path):
        return file_sha256(path)
    digest = hashlib.sha256()
    for folder, _, names in sorted(os.walk(path)):
        for name in sorted(name for name in names if not name.startswith(".")):
            stat = os.stat(os.path.join(folder, name))
            digest.update(f"{os.path.relpath(os.path.join(folder, name), path)}\t{stat.st_size}\t"
                          f"{stat.st_mtime_ns}\n".encode("utf-8"))
    return digest.hexdigest()


def _read_json(path: str, what: str) -> Optional[dict]:
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise EncodingError(f"{what} {path} is not readable JSON ({error}); delete it to re-encode") from None


def _read_manifest(cache_dir: str) -> Optional[dict]:
    return _read_json(os.path.join(cache_dir, MANIFEST_NAME), "feature cache manifest")


def _read_shard(cache_dir: str, index: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """``({"ids", "captions"}, image features, text features)`` of a cached shard (memory-mapped)."""
    files = {key: os.path.join(cache_dir, name) for key, name in _shard_files(index).items()}
    with open(files["pairs"], "r", encoding="utf-8") as handle:
        pairs = json.load(handle)
    return pairs, np.load(files["image"], mmap_mode="r"), np.load(files["text"], mmap_mode="r")


def verified_shard(cache_dir: str, index: int, settings: dict) -> Optional[tuple[dict, np.ndarray, np.ndarray]]:
    """The cached shard ``index`` if its done record exists, has ``settings`` and its files hash to
    the recorded digests; None for a missing, half-written, damaged or differently made shard."""
    files = {key: os.path.join(cache_dir, name) for key, name in _shard_files(index).items()}
    try:
        record = _read_json(files["done"], "feature shard record")
    except EncodingError:
        return None
    if record is None or record.get("settings") != settings:
        return None
    digests = record.get("sha256", {})
    try:
        if any(file_sha256(files[part]) != digests.get(part) for part in DATA_PARTS):
            return None
        pairs, image, text = _read_shard(cache_dir, index)
    except (OSError, ValueError):
        return None
    if not len(pairs["ids"]) == len(pairs["captions"]) == image.shape[0] == text.shape[0] == record["count"]:
        return None
    return pairs, image, text


class _PairEncoder:
    """Frozen CLIP forward for batches of (image, caption); decodes lazy images in ``workers`` threads."""

    def __init__(self, model: Any, transform: Callable, device: str, workers: int) -> None:
        self.model = model
        self.transform = transform
        self.device = device
        self.context_length = getattr(model, "context_length", 77)
        self.pool = ThreadPoolExecutor(workers) if workers > 0 else None
        self.pairs_encoded = 0

    def pixels(self, image: Any) -> Optional[torch.Tensor]:
        """The model input of one image (decoded first when it is a loader); None if unreadable."""
        if callable(image) and not torch.is_tensor(image) and not hasattr(image, "convert"):
            image = image()
            if image is None:
                return None
        return image if torch.is_tensor(image) else self.transform(image)

    def prepare(self, images: list) -> list[Optional[torch.Tensor]]:
        return list(self.pool.map(self.pixels, images) if self.pool is not None else map(self.pixels, images))

    @staticmethod
    def _unit(features: torch.Tensor) -> np.ndarray:
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()

    @torch.inference_mode()
    def __call__(self, pixels: list[torch.Tensor], captions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        tokens = clip.tokenize(captions, context_length=self.context_length, truncate=True).to(self.device)
        self.pairs_encoded += len(pixels)
        return (self._unit(self.model.encode_image(torch.stack(pixels).to(self.device))),
                self._unit(self.model.encode_text(tokens)))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


class _ShardBuilder:
    """Collects one shard's items as they are read: an item found in the trusted cached shard (same id
    and caption) reuses its rows, the others are decoded and encoded in batches."""

    def __init__(self, encoder: _PairEncoder, batch_size: int,
                 cached: Optional[tuple[dict, np.ndarray, np.ndarray]]) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        self.cached = cached
        self.cached_rows = ({corpus_id: row for row, corpus_id in enumerate(cached[0]["ids"])}
                            if cached is not None else {})
        self.rows: list[list] = []  # [id, caption, image row, text row]; None rows: pending or skipped
        self.pending: list[tuple[int, Any]] = []
        self.reused = self.skipped = 0

    def add(self, corpus_id: str, image: Any, caption: str) -> None:
        cached_row = self.cached_rows.get(corpus_id)
        if cached_row is not None and self.cached[0]["captions"][cached_row] == caption:
            self.rows.append([corpus_id, caption, self.cached[1][cached_row], self.cached[2][cached_row]])
            self.reused += 1
            return
        self.rows.append([corpus_id, caption, None, None])
        self.pending.append((len(self.rows) - 1, image))
        if len(self.pending) == self.batch_size:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        prepared = self.encoder.prepare([image for _, image in self.pending])
        ready = [(position, pixels) for (position, _), pixels in zip(self.pending, prepared) if pixels is not None]
        self.pending = []
        if not ready:
            return
        image_features, text_features = self.encoder([pixels for _, pixels in ready],
                                                     [self.rows[position][1] for position, _ in ready])
        for row, (position, _) in enumerate(ready):
            self.rows[position][2:] = [image_features[row], text_features[row]]

    def finish(self) -> list[list]:
        """Encode what is still pending; return the readable rows (unreadable images are counted)."""
        self._flush()
        kept = [row for row in self.rows if row[2] is not None]
        self.skipped = len(self.rows) - len(kept)
        return kept

    def unchanged(self, kept: list[list]) -> bool:
        return self.cached is not None and self.reused == len(kept) == len(self.cached[0]["ids"]) \
            and [row[0] for row in kept] == list(self.cached[0]["ids"])

    @staticmethod
    def write(kept: list[list], cache_dir: str, index: int, settings: dict) -> None:
        """Write the shard's data files, then its done record (deleted first, so a kill leaves none)."""
        files = {key: os.path.join(cache_dir, name) for key, name in _shard_files(index).items()}
        if os.path.exists(files["done"]):
            os.unlink(files["done"])
        save_npy_atomic(files["image"], np.stack([row[2] for row in kept]))
        save_npy_atomic(files["text"], np.stack([row[3] for row in kept]))
        write_json_atomic(files["pairs"], {"ids": [row[0] for row in kept], "captions": [row[1] for row in kept]})
        write_json_atomic(files["done"], {"count": len(kept), "settings": settings,
                                          "sha256": {part: file_sha256(files[part]) for part in DATA_PARTS}})


def _group_items(items: Iterable[Any], shard_size: int, source: str) -> Iterable[tuple[int, list]]:
    """``(shard index, [(id, image, caption), ...])`` for consecutive groups of ``shard_size`` items,
    refusing duplicate ids."""
    first_row: dict[str, int] = {}
    group: list = []
    index = 0
    for row, item in enumerate(items):
        pair = _as_pair(item)
        first = first_row.setdefault(pair[0], row)
        if first != row:
            raise EncodingError(f"{source} has duplicate id {pair[0]!r} (items {first} and {row})")
        group.append(pair)
        if len(group) == shard_size:
            yield index, group
            index, group = index + 1, []
    if group:
        yield index, group


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
    workers: int = 0,
) -> Optional[EncodedCorpus]:
    """Encode ``items`` with frozen ``model`` into ``cache_dir``; return the whole corpus's features
    (on rank 0; other ranks of a distributed run get None once their shards are written).

    ``items``: ``CorpusItem``-like objects (``.id``, ``.image``, ``.caption``), ``LazyCorpusItem`` s
    (``ImageTextCorpus.lazy()``: images decoded only for pairs not in the cache), ``(id, image,
    caption)`` tuples, or ``CorpusDataset`` dicts. ``model`` is a CLIP in eval mode on ``device``;
    ``transform`` maps a PIL image to the model's input tensor (an image that already is a tensor is
    used as it is). ``workers`` threads decode and transform images (the result does not depend on it).
    """
    settings = {"clip_fingerprint": clip_fingerprint, "shard_size": shard_size,
                "transform": describe_transform(transform)}
    manifest = _read_manifest(cache_dir)
    if manifest is not None and manifest.get("format") == CACHE_FORMAT and manifest.get("settings") == settings \
            and manifest.get("complete") and corpus_key is not None and manifest.get("corpus_key") == corpus_key \
            and all(verified_shard(cache_dir, index, settings) is not None for index in range(len(manifest["shards"]))):
        if not distributed.is_main():
            return None
        encoded = load_encoded(cache_dir, clip_fingerprint)
        encoded.pairs_reused, encoded.shards_reused = len(encoded.ids), len(manifest["shards"])
        return encoded
    os.makedirs(cache_dir, exist_ok=True)
    rank, world_size = distributed.rank(), distributed.world_size()
    encoder = _PairEncoder(model, transform, device, workers)
    reused = shards_reused = skipped = 0
    num_shards = 0
    try:
        for index, group in _group_items(tqdm(items, desc="encode", unit="pair", disable=not progress),
                                         shard_size, source):
            num_shards = index + 1
            if index % world_size != rank:
                continue
            shard = _ShardBuilder(encoder, batch_size, verified_shard(cache_dir, index, settings))
            for pair in group:
                shard.add(*pair)
            kept = shard.finish()
            reused, skipped = reused + shard.reused, skipped + shard.skipped
            if not kept:
                raise EncodingError(f"{source}: none of the {len(group)} items of shard {index} has a readable image")
            if shard.unchanged(kept):
                shards_reused += 1
            else:
                shard.write(kept, cache_dir, index, settings)
    finally:
        encoder.close()
    if num_shards == 0:
        raise EncodingError(f"{source} has no readable image-text pairs")
    encoded_now, reused, shards_reused, skipped = distributed.sum_ints(encoder.pairs_encoded, reused,
                                                                      shards_reused, skipped)
    distributed.barrier()
    if not distributed.is_main():
        return None
    _write_manifest(cache_dir, settings, num_shards, corpus_key)
    encoded = load_encoded(cache_dir, clip_fingerprint)
    encoded.pairs_encoded, encoded.pairs_reused, encoded.shards_reused, encoded.pairs_skipped = (
        encoded_now, reused, shards_reused, skipped)
    return encoded


def _write_manifest(cache_dir: str, settings: dict, num_shards: int, corpus_key: Optional[str]) -> None:
    """Record every shard's done record in the manifest; remove shards beyond the corpus's end."""
    shards = []
    for index in range(num_shards):
        record = _read_json(os.path.join(cache_dir, _shard_files(index)["done"]), "feature shard record")
        if record is None or record.get("settings") != settings:
            raise EncodingError(f"feature cache {cache_dir}: shard {index} was not written; re-run the encoding")
        shards.append(record)
    index = num_shards
    while os.path.exists(os.path.join(cache_dir, _shard_files(index)["done"])):
        for name in _shard_files(index).values():
            if os.path.exists(os.path.join(cache_dir, name)):
                os.unlink(os.path.join(cache_dir, name))
        index += 1
    write_json_atomic(os.path.join(cache_dir, MANIFEST_NAME), {
        "format": CACHE_FORMAT, "settings": settings, "shards": shards, "complete": True,
        "num_pairs": sum(record["count"] for record in shards), "corpus_key": corpus_key})


def load_encoded(cache_dir: str, expected_clip_fingerprint: Optional[str] = None,
                 modalities: tuple[str, ...] = ("image", "text")) -> EncodedCorpus:
    """Read a complete feature cache into memory (one (n, d) matrix per modality in ``modalities``; the
    others are left as (n, 0) matrices, so callers that need only ids and captions stay small)."""
    manifest = _read_manifest(cache_dir)
    path = os.path.join(cache_dir, MANIFEST_NAME)
    if manifest is None or not manifest.get("complete"):
        raise EncodingError(f"feature cache {path} is missing or incomplete; run the encoding (cluster.py) to finish it")
    if manifest.get("format") != CACHE_FORMAT:
        raise EncodingError(f"feature cache {path} has format {manifest.get('format')}, expected {CACHE_FORMAT}; "
                            f"re-run cluster.py to re-encode it")
    fingerprint = manifest["settings"]["clip_fingerprint"]
    if expected_clip_fingerprint is not None and fingerprint != expected_clip_fingerprint:
        raise EncodingError(f"feature cache {path} was made with CLIP {fingerprint}, but the model is "
                            f"{expected_clip_fingerprint}")
    ids: list[str] = []
    captions: list[str] = []
    image_shards, text_shards = [], []
    for index, entry in enumerate(manifest["shards"]):
        try:
            pairs, image, text = _read_shard(cache_dir, index)
        except (OSError, ValueError):
            raise EncodingError(f"feature cache {path} lists shard {index} but its files are missing or "
                                f"unreadable; re-run the encoding") from None
        if image.shape[0] != entry["count"] or text.shape[0] != entry["count"]:
            raise EncodingError(f"feature cache {path}: shard {index} has {image.shape[0]} rows, the manifest "
                                f"says {entry['count']}; re-run the encoding")
        ids += pairs["ids"]
        captions += pairs["captions"]
        image_shards.append(image if "image" in modalities else np.empty((image.shape[0], 0), np.float32))
        text_shards.append(text if "text" in modalities else np.empty((text.shape[0], 0), np.float32))
    return EncodedCorpus(ids=ids, captions=captions, image=np.concatenate(image_shards),
                         text=np.concatenate(text_shards), clip_fingerprint=fingerprint, cache_dir=cache_dir)
